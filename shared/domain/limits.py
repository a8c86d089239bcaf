"""A rate limit: a sustained rate and a burst (GCRA; see shared/ratelimit)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    per_second: float
    burst: int

    @property
    def interval_ms(self) -> int:
        return max(1, round(1000 / self.per_second))

    @property
    def enabled(self) -> bool:
        return self.per_second > 0 and self.burst > 0
