"""The seat table's hot path: atomic lease grants per license, in Redis.

Each operation is one Lua script (files in ``lua/``, registered once with redis-py's
``register_script``, which runs EVALSHA and reloads on NoScriptError). Every key of a
license carries the hash tag ``{<license_id>}`` (keys.py), so each script touches one
cluster slot. Scripts answer a small code that replies.py turns into a typed outcome;
redis-py failures become ``BackendUnavailable`` at one point (redis_calls.py). The
sweep's side of the same keys is sweep_ledger.py.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from shared.domain import EndReason
from shared.domain.leases import AcquireOutcome, HeartbeatOutcome, LeaseRecord, ReleaseOutcome, SeatCount
from shared.errors import BackendUnavailable
from shared.seats.keys import REVIVED_COUNTER, LicenseKeys, index_key, index_shard
from shared.seats.redis_calls import RedisLike, load_script, redis_unavailable, text
from shared.seats.replies import decode_acquire, decode_count, decode_heartbeat, decode_release, parse_lease_record

ROLLBACK = "rollback"
"""release_seat's erase mode: a grant whose durable record could not be written leaves no trace."""


def _flag(value: bool) -> str:
    return "1" if value else "0"


class SeatTable:
    """Seat operations of every license, over one Redis connection pool."""

    def __init__(self, client: RedisLike):
        self._redis = client
        self._acquire = client.register_script(load_script("acquire_seat"))
        self._heartbeat = client.register_script(load_script("heartbeat_seat"))
        self._release = client.register_script(load_script("release_seat"))
        self._count = client.register_script(load_script("count_seats"))

    def _run(self, script: Any, license_id: str, args: list[Any]) -> Any:
        with redis_unavailable():
            return script(keys=LicenseKeys.of(license_id).in_script_order(), args=args)

    def generation(self, license_id: str) -> str:
        """The license's current metadata generation, creating one if Redis has none.

        Read this *before* reading the license from Firestore: an admin change that
        lands in between then makes the next script call answer STALE.
        """
        key = LicenseKeys.of(license_id).gen
        with redis_unavailable():
            current = self._redis.get(key)
            if current is None:
                self._redis.set(key, secrets.token_hex(8), nx=True)
                current = self._redis.get(key)
        return text(current)

    def bump_generation(self, license_id: str) -> None:
        """Mark every cached copy of the license's metadata stale (after an admin change)."""
        with redis_unavailable():
            self._redis.set(LicenseKeys.of(license_id).gen, secrets.token_hex(8))

    def acquire(self, license_id: str, *, generation: str, now_ms: int, ttl_ms: int, max_seats: int, uid: str,
                hardware_id: str, new_session_id: str, max_sessions_per_user: int = 0) -> AcquireOutcome:
        day = time.strftime("%Y-%m-%d", time.gmtime(now_ms // 1000))
        reply = self._run(self._acquire, license_id, [now_ms, ttl_ms, max_seats, generation, uid, hardware_id,
                                                      new_session_id, day, max_sessions_per_user])
        return decode_acquire(reply, now_ms=now_ms)

    def heartbeat(self, license_id: str, session_id: str, *, generation: str, now_ms: int, ttl_ms: int,
                  caller_uid: str, may_act_for_others: bool, revive_window_ms: int = 0, max_seats: int = 0,
                  borrow: bool = False) -> HeartbeatOutcome:
        reply = self._run(self._heartbeat, license_id, [now_ms, ttl_ms, generation, session_id, caller_uid,
                                                        _flag(may_act_for_others), revive_window_ms, max_seats,
                                                        _flag(borrow)])
        return decode_heartbeat(reply)

    def release(self, license_id: str, session_id: str, *, now_ms: int, caller_uid: str, may_act_for_others: bool,
                end: EndReason = EndReason.RELEASED, offline_grace_ms: int = 0,
                license_end_ms: int | None = None) -> ReleaseOutcome:
        """End a session now. A borrowed one ended by an admin (FORCED, REVOKED) keeps its
        seat counted until its token's end plus `offline_grace_ms` (never past the
        license's end): the borrower may hold that token offline, out of anyone's reach."""
        return self._end(license_id, session_id, now_ms, caller_uid, may_act_for_others, end.value,
                         offline_grace_ms, license_end_ms)

    def rollback(self, license_id: str, session_id: str, *, now_ms: int) -> None:
        """Erase a grant whose durable record could not be written (or that Firestore already closed)."""
        self._end(license_id, session_id, now_ms, "", True, ROLLBACK, 0, None)

    def _end(self, license_id: str, session_id: str, now_ms: int, caller_uid: str, may_act_for_others: bool,
             mode: str, offline_grace_ms: int, license_end_ms: int | None) -> ReleaseOutcome:
        reply = self._run(self._release, license_id, [now_ms, session_id, caller_uid, _flag(may_act_for_others),
                                                      mode, offline_grace_ms, license_end_ms or 0])
        return decode_release(reply, session_id=session_id)

    def count(self, license_id: str, *, generation: str, now_ms: int) -> SeatCount:
        return decode_count(self._run(self._count, license_id, [now_ms, generation]))

    def settled(self, license_id: str, session_ids: list[str]) -> None:
        """Forget ended sessions whose end is now durable in Firestore."""
        if not session_ids:
            return
        keys = LicenseKeys.of(license_id)
        with redis_unavailable():
            pipe = self._redis.pipeline(transaction=False)  # idempotent, one slot: no MULTI needed
            pipe.zrem(keys.ended, *session_ids)
            pipe.hdel(keys.sessions, *session_ids)
            pipe.execute()

    def index_license(self, license_id: str) -> None:
        """Enter a license in the sweep's index (after a grant: it now has a lease)."""
        with redis_unavailable():
            self._redis.sadd(index_key(index_shard(license_id)), license_id)

    def count_revival(self) -> None:
        """Tell the next sweep's report that a lease was revived."""
        try:
            with redis_unavailable():
                self._redis.incr(REVIVED_COUNTER)
        except BackendUnavailable:
            pass  # a statistic, not state: never fail a heartbeat for it

    # -- reads for administrators ------------------------------------------------------
    def live_sessions(self, license_id: str, *, now_ms: int, limit: int = 1000) -> list[LeaseRecord]:
        """What counts against the license's seats now, soonest expiry first: live leases,
        and holds of ended borrows (state 'held')."""
        keys = LicenseKeys.of(license_id)
        with redis_unavailable():
            ids = self._redis.zrangebyscore(keys.leases, f"({now_ms}", "+inf", start=0, num=limit)
            raws = self._redis.hmget(keys.sessions, ids) if ids else []
        return [parse_lease_record(sid, raw) for sid, raw in zip(ids, raws, strict=True) if raw is not None]

    def live_count(self, license_id: str, *, now_ms: int) -> int:
        """How many seats of the license count now (one ZCOUNT, no generation check)."""
        with redis_unavailable():
            return int(self._redis.zcount(LicenseKeys.of(license_id).leases, f"({now_ms}", "+inf"))

    def daily_usage(self, license_id: str) -> dict[str, dict[str, int]]:
        """{"YYYY-MM-DD": {"peak": n, "denials": n}} for the days Redis has counted."""
        with redis_unavailable():
            fields = self._redis.hgetall(LicenseKeys.of(license_id).usage)
        days: dict[str, dict[str, int]] = {}
        for field, value in fields.items():
            day, _, name = text(field).partition(":")
            days.setdefault(day, {"peak": 0, "denials": 0})[name] = int(value)
        return dict(sorted(days.items()))
