"""Rate limits in process memory, for functions that touch no backend (health, jwks).

The same GCRA as shared_limits.py, per instance: bounded in total by the function's
maximum instances.
"""

from __future__ import annotations

import threading

import cachetools

from shared.clock import Clock
from shared.domain.limits import Limit
from shared.ratelimit.refusal import refuse


class LocalRateLimiter:
    """The same algorithm in process memory, for functions that touch no backend."""

    def __init__(self, clock: Clock, *, max_keys: int = 50_000):
        self._clock = clock
        self._tat: cachetools.LRUCache[str, int] = cachetools.LRUCache(max_keys)
        self._lock = threading.Lock()

    def charge(self, scope: str, ident: str, limit: Limit) -> None:
        if not limit.enabled:
            return
        now, tolerance = self._clock.now_ms(), limit.interval_ms * (limit.burst - 1)
        with self._lock:
            tat = max(self._tat.get(f"{scope}:{ident}", now), now)
            if tat - now > tolerance:
                raise refuse(scope, tat - now - tolerance)
            self._tat[f"{scope}:{ident}"] = tat + limit.interval_ms
