"""The answer every limiter gives when a caller is over its limit."""

from __future__ import annotations

import math

from shared.errors import RateLimited


def refuse(scope: str, retry_after_ms: int) -> RateLimited:
    retry_after_s = max(1, math.ceil(retry_after_ms / 1000))
    return RateLimited(f"too many requests for this {scope}; retry in {retry_after_s} s",
                       retry_after_s=retry_after_s, scope=scope)
