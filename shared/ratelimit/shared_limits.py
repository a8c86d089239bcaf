"""Rate limits shared by every instance: GCRA in Redis (lua/take_token.lua).

A limit is a sustained rate and a burst: `burst` requests may arrive at once on an idle
key, then one every 1/rate seconds. Seat functions charge Redis, one script and one
round trip for all of a request's keys.
"""

from __future__ import annotations

import hashlib
import logging
from importlib import resources
from typing import Any

import redis

from shared.clock import Clock
from shared.domain.limits import Limit
from shared.ratelimit.refusal import refuse

log = logging.getLogger(__name__)


class RedisRateLimiter:
    """Limits shared by every instance, in Redis."""

    def __init__(self, client: redis.Redis, clock: Clock):
        self._redis = client
        self._clock = clock
        self._script = (resources.files("shared.ratelimit") / "lua" / "take_token.lua").read_text()
        self._sha = hashlib.sha1(self._script.encode()).hexdigest()

    def charge(self, charges: list[tuple[str, str, Limit]]) -> None:
        """Charge one request to each (scope, id, limit); raises RateLimited for the first refusal.

        Redis trouble lets the request through (the operation itself will then report
        UNAVAILABLE if it needs Redis): a limiter must not become the outage.
        """
        active = [(scope, ident, limit) for scope, ident, limit in charges if limit.enabled]
        if not active:
            return
        now = self._clock.now_ms()
        try:
            answers = self._take_all(active, now)
            if any(isinstance(a, redis.exceptions.NoScriptError) for a in answers):
                # Redis restarted or was flushed: load the script once, rerun what did not run.
                self._redis.script_load(self._script)
                missing = [i for i, a in enumerate(answers) if isinstance(a, redis.exceptions.NoScriptError)]
                for i, answer in zip(missing, self._take_all([active[i] for i in missing], now), strict=True):
                    answers[i] = answer
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            log.warning("rate limiter skipped: redis unavailable (%s)", type(exc).__name__)
            return
        for (scope, _, _), (allowed, retry_after_ms) in zip(active, answers, strict=True):
            if not int(allowed):
                raise refuse(scope, int(retry_after_ms))


    def _take_all(self, charges: list[tuple[str, str, Limit]], now: int) -> list[Any]:
        # Raw EVALSHA in a plain pipeline: one round trip. (A pipeline holding redis-py
        # Script objects first sends SCRIPT EXISTS, a second round trip per request.)
        pipe = self._redis.pipeline(transaction=False)
        for scope, ident, limit in charges:
            pipe.evalsha(self._sha, 1, f"rl:{{{scope}:{ident}}}", now, limit.interval_ms, limit.burst)
        return pipe.execute(raise_on_error=False)
