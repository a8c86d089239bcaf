"""The seat table: atomic lease grants per license, in Redis.

Each operation is one Lua script (files in ``lua/``, registered once with redis-py's
``register_script``, which runs EVALSHA and reloads on NoScriptError). Every key of a
license carries the hash tag ``{<license_id>}``, so each script touches one cluster
slot. Scripts answer a small code; this module turns it into a typed outcome and
translates redis-py failures into ``BackendUnavailable``.
"""

from __future__ import annotations

import json
import secrets
import time
import zlib
from dataclasses import dataclass
from importlib import resources
from typing import Literal, Protocol

import redis

from shared.errors import BackendUnavailable


class RedisLike(Protocol):
    def register_script(self, script: str): ...

    def get(self, name: str): ...

    def set(self, name: str, value: str, nx: bool = ...): ...

    def pipeline(self, transaction: bool = ...): ...


_KEY_PARTS = ("leases", "holders", "sessions", "ended", "gen", "unverified", "usage")


def license_keys(license_id: str) -> list[str]:
    """The seven keys of one license, in the order every script expects them."""
    tag = "{" + license_id + "}"
    return [f"seat:{tag}:{part}" for part in _KEY_PARTS]


HOLD_PREFIX = "hold:"  # a leases member that counts a seat after its session ended (release_seat)
INDEX_SHARDS = 16
REVIVED_COUNTER = "sweep:{stats}:revived"


def index_key(shard: int) -> str:
    """One shard of the index of licenses that have leases (each shard its own slot)."""
    return f"sweep:{{idx-{shard:02d}}}:licenses"


def index_shard(license_id: str) -> int:
    return zlib.crc32(license_id.encode()) % INDEX_SHARDS


def _load_script(name: str) -> str:
    lua = resources.files("shared.seats") / "lua"
    return (lua / "_prelude.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class AcquireOutcome:
    kind: Literal["GRANTED", "EXISTING", "FULL", "USER_LIMIT", "STALE"]
    session_id: str | None = None
    expires_ms: int | None = None
    used: int = 0
    max_seats: int = 0
    acquired_ms: int | None = None
    earliest_expiry_ms: int | None = None


@dataclass(frozen=True)
class HeartbeatOutcome:
    kind: Literal["OK", "REVIVED", "UNKNOWN", "FORBIDDEN", "ENDED", "STALE"]
    expires_ms: int | None = None
    hardware_id: str | None = None
    uid: str | None = None
    acquired_ms: int | None = None
    end_state: str | None = None
    expired_ms: int | None = None  # REVIVED: when the lease had run out


@dataclass(frozen=True)
class SessionEnd:
    """How a session ended, as Redis knows it: what Firestore must be told."""

    session_id: str
    state: str
    uid: str
    hardware_id: str
    acquired_ms: int
    last_heartbeat_ms: int
    ended_ms: int
    held_until_ms: int | None = None
    """A borrowed seat an admin ended keeps counting until its token lapses offline."""


@dataclass(frozen=True)
class ReleaseOutcome:
    kind: Literal["ENDED", "ALREADY", "UNKNOWN", "FORBIDDEN", "ROLLED_BACK"]
    end: SessionEnd | None = None


@dataclass(frozen=True)
class LeaseRecord:
    """A session as Redis holds it (for the sweep)."""

    session_id: str
    uid: str
    hardware_id: str
    acquired_ms: int
    last_heartbeat_ms: int
    expires_ms: int
    state: str  # live | expired | released | ... | held (an ended borrow still counted until expires_ms)
    ended_ms: int | None
    borrowed_until_ms: int | None = None

    @classmethod
    def parse(cls, member: bytes | str, raw: bytes | str) -> "LeaseRecord":
        rec = json.loads(raw)
        return cls(_s(member).removeprefix(HOLD_PREFIX), rec["u"], rec["h"], int(rec["a"]), int(rec["b"]),
                   int(rec["e"]), rec["s"], int(rec["x"]) if "x" in rec else None,
                   int(rec["o"]) if "o" in rec else None)

    def as_end(self) -> "SessionEnd":
        return SessionEnd(self.session_id, self.state, self.uid, self.hardware_id, self.acquired_ms,
                          self.last_heartbeat_ms, self.ended_ms if self.ended_ms is not None else self.expires_ms)


@dataclass(frozen=True)
class SweepBatch:
    expired: int
    live: int
    outbox_left: int
    ends: list[LeaseRecord]
    unverified: list[LeaseRecord]


@dataclass(frozen=True)
class RestoreEntry:
    """What the durable record says counts against a license's seats (for restore)."""

    session_id: str
    uid: str
    hardware_id: str
    acquired_ms: int
    until_ms: int | None = None  # a session: the end of its borrow; a hold: when it stops counting
    hold: bool = False  # an ended borrow whose seat still counts


@dataclass(frozen=True)
class SeatCount:
    kind: Literal["OK", "STALE"]
    used: int = 0
    earliest_expiry_ms: int | None = None


class SeatTable:
    """Seat operations of every license, over one Redis connection pool."""

    def __init__(self, client: RedisLike):
        self._redis = client
        self._acquire = client.register_script(_load_script("acquire_seat"))
        self._heartbeat = client.register_script(_load_script("heartbeat_seat"))
        self._release = client.register_script(_load_script("release_seat"))
        self._count = client.register_script(_load_script("count_seats"))
        self._sweep = client.register_script(_load_script("sweep_license"))
        self._mark_verified = client.register_script(_load_script("mark_verified"))
        self._restore = client.register_script(_load_script("restore_seats"))

    def _run(self, script, keys: list[str], args: list) -> list:
        try:
            return script(keys=keys, args=args)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise BackendUnavailable("redis") from exc

    def generation(self, license_id: str) -> str:
        """The license's current metadata generation, creating one if Redis has none.

        Read this *before* reading the license from Firestore: an admin change that
        lands in between then makes the next script call answer STALE.
        """
        key = license_keys(license_id)[4]
        try:
            current = self._redis.get(key)
            if current is None:
                self._redis.set(key, secrets.token_hex(8), nx=True)
                current = self._redis.get(key)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise BackendUnavailable("redis") from exc
        return _s(current)

    def bump_generation(self, license_id: str) -> None:
        """Mark every cached copy of the license's metadata stale (after an admin change)."""
        try:
            self._redis.set(license_keys(license_id)[4], secrets.token_hex(8))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise BackendUnavailable("redis") from exc

    def acquire(
        self,
        license_id: str,
        *,
        generation: str,
        now_ms: int,
        ttl_ms: int,
        max_seats: int,
        uid: str,
        hardware_id: str,
        new_session_id: str,
        max_sessions_per_user: int = 0,
    ) -> AcquireOutcome:
        day = time.strftime("%Y-%m-%d", time.gmtime(now_ms // 1000))
        reply = self._run(
            self._acquire,
            license_keys(license_id),
            [now_ms, ttl_ms, max_seats, generation, uid, hardware_id, new_session_id, day, max_sessions_per_user],
        )
        kind = _s(reply[0])
        if kind == "GRANTED":
            return AcquireOutcome(kind, _s(reply[1]), int(reply[2]), int(reply[3]), int(reply[4]), now_ms)
        if kind == "EXISTING":
            return AcquireOutcome(kind, _s(reply[1]), int(reply[2]), int(reply[3]), int(reply[4]), int(reply[5]))
        if kind == "FULL":
            return AcquireOutcome(kind, used=int(reply[1]), max_seats=int(reply[2]), earliest_expiry_ms=int(reply[3]))
        if kind == "USER_LIMIT":
            return AcquireOutcome(kind, used=int(reply[1]), max_seats=int(reply[2]))
        return AcquireOutcome("STALE")

    def heartbeat(
        self,
        license_id: str,
        session_id: str,
        *,
        generation: str,
        now_ms: int,
        ttl_ms: int,
        caller_uid: str,
        may_act_for_others: bool,
        revive_window_ms: int = 0,
        max_seats: int = 0,
        borrow: bool = False,
    ) -> HeartbeatOutcome:
        reply = self._run(
            self._heartbeat,
            license_keys(license_id),
            [now_ms, ttl_ms, generation, session_id, caller_uid, "1" if may_act_for_others else "0",
             revive_window_ms, max_seats, "1" if borrow else "0"],
        )
        kind = _s(reply[0])
        if kind == "OK":
            return HeartbeatOutcome(kind, int(reply[1]), _s(reply[2]), _s(reply[3]), int(reply[4]))
        if kind == "REVIVED":
            return HeartbeatOutcome(kind, int(reply[1]), _s(reply[2]), _s(reply[3]), int(reply[4]),
                                    expired_ms=int(reply[5]))
        if kind == "ENDED":
            return HeartbeatOutcome(kind, end_state=_s(reply[1]))
        return HeartbeatOutcome(kind)

    def release(
        self,
        license_id: str,
        session_id: str,
        *,
        now_ms: int,
        caller_uid: str,
        may_act_for_others: bool,
        end_state: Literal["released", "returned", "forced", "revoked", "unrecorded", "rollback"] = "released",
        offline_grace_ms: int = 0,
        license_end_ms: int | None = None,
    ) -> ReleaseOutcome:
        """End a session now. A borrowed one ended by an admin ('forced', 'revoked') keeps
        its seat counted until its token's end plus `offline_grace_ms` (never past the
        license's end): the borrower may hold that token offline, out of anyone's reach."""
        reply = self._run(
            self._release,
            license_keys(license_id),
            [now_ms, session_id, caller_uid, "1" if may_act_for_others else "0", end_state, offline_grace_ms,
             license_end_ms or 0],
        )
        kind = _s(reply[0])
        if kind in ("ENDED", "ALREADY"):
            end = SessionEnd(
                session_id=session_id,
                state=_s(reply[1]),
                uid=_s(reply[2]),
                hardware_id=_s(reply[3]),
                acquired_ms=int(reply[4]),
                last_heartbeat_ms=int(reply[5]),
                ended_ms=int(reply[6]),
                held_until_ms=int(reply[7]) or None,
            )
            return ReleaseOutcome(kind, end)
        return ReleaseOutcome(kind)

    def rollback(self, license_id: str, session_id: str, *, now_ms: int) -> None:
        """Erase a grant whose durable record could not be written."""
        self.release(
            license_id, session_id, now_ms=now_ms, caller_uid="", may_act_for_others=True, end_state="rollback"
        )

    def count(self, license_id: str, *, generation: str, now_ms: int) -> SeatCount:
        reply = self._run(self._count, license_keys(license_id), [now_ms, generation])
        if _s(reply[0]) == "STALE":
            return SeatCount("STALE")
        earliest = int(reply[2])
        return SeatCount("OK", int(reply[1]), None if earliest < 0 else earliest)

    def settled(self, license_id: str, session_ids: list[str]) -> None:
        """Forget ended sessions whose end is now durable in Firestore."""
        if not session_ids:
            return
        keys = license_keys(license_id)
        try:
            pipe = self._redis.pipeline(transaction=False)  # idempotent, one slot: no MULTI needed
            pipe.zrem(keys[3], *session_ids)
            pipe.hdel(keys[2], *session_ids)
            pipe.execute()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise BackendUnavailable("redis") from exc

    # -- the sweep ---------------------------------------------------------------------
    def index_license(self, license_id: str) -> None:
        """Enter a license in the sweep's index (after a grant: it now has a lease)."""
        try:
            self._redis.sadd(index_key(index_shard(license_id)), license_id)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise BackendUnavailable("redis") from exc

    def indexed_licenses(self, shard: int) -> list[str]:
        return sorted(_s(m) for m in self._redis.smembers(index_key(shard)))

    def unindex_if_idle(self, license_id: str) -> bool:
        """Drop a license with no lease and no pending end from the index, race-free.

        Remove first, then look: a grant that lands in between re-indexes the license
        itself (acquire indexes after granting), and one that landed before is seen here.
        """
        key = index_key(index_shard(license_id))
        leases, _, _, ended, *_ = license_keys(license_id)
        self._redis.srem(key, license_id)
        recheck = self._redis.pipeline(transaction=False)  # both keys in the license's slot
        recheck.zcard(leases)
        recheck.zcard(ended)
        if any(recheck.execute()):
            self._redis.sadd(key, license_id)
            return False
        return True

    def sweep_batch(self, license_id: str, *, now_ms: int, batch: int, settle_until_ms: int,
                    verify_before_ms: int) -> SweepBatch:
        reply = self._run(self._sweep, license_keys(license_id),
                          [now_ms, batch, settle_until_ms, verify_before_ms])
        pairs = lambda flat: [LeaseRecord.parse(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]  # noqa: E731
        return SweepBatch(int(reply[0]), int(reply[1]), int(reply[2]), pairs(reply[3]), pairs(reply[4]))

    def mark_verified(self, license_id: str, session_ids: list[str]) -> None:
        if session_ids:
            self._run(self._mark_verified, license_keys(license_id), session_ids)

    def restore(self, license_id: str, entries: list[RestoreEntry], *, now_ms: int, max_seats: int,
                ttl_ms: int) -> list[str]:
        """Put what counts against the seats back after a loss, in the order given (holds
        and borrows first, then sessions oldest first); one outcome each (restore_seats.lua)."""
        args: list = [now_ms, max_seats, ttl_ms]
        for entry in entries:
            args.extend([entry.session_id, entry.uid, entry.hardware_id, entry.acquired_ms, entry.until_ms or 0,
                         "h" if entry.hold else "s"])
        return [_s(o) for o in self._run(self._restore, license_keys(license_id), args)]

    def count_revival(self) -> None:
        """Tell the next sweep's report that a lease was revived."""
        try:
            self._redis.incr(REVIVED_COUNTER)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            pass  # a statistic, not state: never fail a heartbeat for it

    def live_sessions(self, license_id: str, *, now_ms: int, limit: int = 1000) -> list[LeaseRecord]:
        """What counts against the license's seats now, soonest expiry first: live leases,
        and holds of ended borrows (state 'held')."""
        leases, _, sessions, *_ = license_keys(license_id)
        try:
            ids = self._redis.zrangebyscore(leases, f"({now_ms}", "+inf", start=0, num=limit)
            raws = self._redis.hmget(sessions, ids) if ids else []
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise BackendUnavailable("redis") from exc
        return [LeaseRecord.parse(sid, raw) for sid, raw in zip(ids, raws) if raw is not None]

    def daily_usage(self, license_id: str) -> dict[str, dict[str, int]]:
        """{"YYYY-MM-DD": {"peak": n, "denials": n}} for the days Redis has counted."""
        try:
            fields = self._redis.hgetall(license_keys(license_id)[6])
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise BackendUnavailable("redis") from exc
        days: dict[str, dict[str, int]] = {}
        for field, value in fields.items():
            day, _, name = _s(field).partition(":")
            days.setdefault(day, {"peak": 0, "denials": 0})[name] = int(value)
        return dict(sorted(days.items()))

    def live_count(self, license_id: str, *, now_ms: int) -> int:
        """How many leases of the license are live (one ZCOUNT, no generation check)."""
        try:
            return self._redis.zcount(license_keys(license_id)[0], f"({now_ms}", "+inf")
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise BackendUnavailable("redis") from exc
