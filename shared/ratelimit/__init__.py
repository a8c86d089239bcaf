"""Rate limits: GCRA per client IP, per user and per license (acquire)."""

from shared.ratelimit.limits import Limit, LocalRateLimiter, RedisRateLimiter

__all__ = ["Limit", "LocalRateLimiter", "RedisRateLimiter"]
