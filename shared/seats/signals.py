"""Conflict detection's notes in Redis (shared/domain/anomalies.py; keys: keys.py SignalKeys).

The seat functions note who acquired a seat from which hardware, from which address each
session heartbeats, and each grant, in one pipelined write after the seat operation (no
Firestore access; a note that cannot be written is skipped: they are statistics, and a
seat is never refused for them). Each note is a sorted-set member scored with when it was
last seen, with when it was first seen beside it; every key expires after the license's
longest rule window, and the sweep trims what is older than that.
"""

from __future__ import annotations

import json
import logging

from shared.domain.anomalies import Seen, Signals
from shared.errors import BackendUnavailable
from shared.seats.keys import SIGNALS_INDEX, SIGNALS_PASS, SIGNALS_THROUGH, SignalKeys
from shared.seats.redis_calls import RedisLike, redis_unavailable, text

log = logging.getLogger(__name__)

MAX_NOTES = 20_000
"""Members a license's sorted set keeps (the most recent): bounds memory whatever a caller sends."""
INDEX_KEPT_MS = 8 * 86_400_000  # past the longest window a rule may have (7 days)


def _member(*parts: str) -> str:
    return json.dumps(list(parts), separators=(",", ":"))


class SignalLedger:
    def __init__(self, client: RedisLike):
        self._redis = client

    # -- the seat functions' side ------------------------------------------------------------
    def note(self, license_id: str, *, now_ms: int, keep_ms: int, pair: tuple[str, str] | None = None,
             address: tuple[str, str, str] | None = None, grant: tuple[str, str] | None = None) -> None:
        """Note what an acquire or heartbeat saw; nothing when every rule is off (keep_ms 0)."""
        if keep_ms <= 0:
            return
        keys = SignalKeys.of(license_id)
        try:
            with redis_unavailable():
                pipe = self._redis.pipeline(transaction=False)
                for kind, key, parts in (("pairs", keys.pairs, pair), ("addresses", keys.addresses, address),
                                         ("grants", keys.grants, grant)):
                    if parts is None:
                        continue
                    member = _member(*parts)
                    pipe.zadd(key, {member: now_ms})
                    pipe.hsetnx(keys.first, f"{kind} {member}", now_ms)
                    pipe.pexpire(key, keep_ms)
                pipe.pexpire(keys.first, keep_ms)
                pipe.zadd(SIGNALS_INDEX, {license_id: now_ms})
                pipe.execute()
        except BackendUnavailable:
            log.warning("conflict-detection notes of %s skipped: Redis unavailable", license_id)

    # -- the sweep's side -------------------------------------------------------------------
    def take_pass(self, *, interval_ms: int) -> bool:
        """True for the one sweep that evaluates now (at most one pass per interval)."""
        with redis_unavailable():
            return bool(self._redis.set(SIGNALS_PASS, "1", nx=True, px=interval_ms))

    def noted_since(self, since_ms: int, *, limit: int) -> list[tuple[str, int]]:
        """(license, its latest note) of the licenses noted after `since_ms`, oldest first."""
        with redis_unavailable():
            found = self._redis.zrangebyscore(SIGNALS_INDEX, f"({since_ms}", "+inf", start=0, num=limit,
                                              withscores=True)
        return [(text(member), int(score)) for member, score in found]

    def evaluated_through(self) -> int:
        with redis_unavailable():
            value = self._redis.get(SIGNALS_THROUGH)
        return int(text(value)) if value is not None else 0

    def set_evaluated_through(self, ms: int, *, now_ms: int) -> None:
        with redis_unavailable():
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(SIGNALS_THROUGH, str(ms))
            pipe.zremrangebyscore(SIGNALS_INDEX, "-inf", now_ms - INDEX_KEPT_MS)
            pipe.execute()

    def signals(self, license_id: str, *, now_ms: int, keep_ms: int) -> Signals:
        """The license's notes of the last `keep_ms`, after trimming older ones away."""
        keys = SignalKeys.of(license_id)
        since = now_ms - keep_ms
        with redis_unavailable():
            pipe = self._redis.pipeline(transaction=False)
            for key in (keys.pairs, keys.addresses, keys.grants):
                pipe.zremrangebyscore(key, "-inf", f"({since}")
                pipe.zremrangebyrank(key, 0, -(MAX_NOTES + 1))
                pipe.zrangebyscore(key, since, "+inf", withscores=True)
            pipe.hgetall(keys.first)
            replies = pipe.execute()
        first = {text(k): int(text(v)) for k, v in replies[-1].items()}
        noted = {kind: [(text(member), int(score)) for member, score in replies[2 + 3 * i]]
                 for i, kind in enumerate(("pairs", "addresses", "grants"))}
        self._forget_firsts(keys, first, noted)

        def seen(kind: str) -> tuple[Seen, ...]:
            return tuple(Seen(tuple(json.loads(member)), first.get(f"{kind} {member}", last), last)
                         for member, last in noted[kind])

        return Signals(pairs=seen("pairs"), addresses=seen("addresses"), grants=seen("grants"))

    def _forget_firsts(self, keys: SignalKeys, first: dict[str, int], noted: dict[str, list[tuple[str, int]]]) -> None:
        """Drop the first-seen times of notes trimmed away. (One noted between the read and this
        loses its first-seen time: its evidence then starts at its last, never wrongly earlier.)"""
        live = {f"{kind} {member}" for kind, members in noted.items() for member, _ in members}
        stale = [field for field in first if field not in live]
        if stale:
            with redis_unavailable():
                self._redis.hdel(keys.first, *stale)
