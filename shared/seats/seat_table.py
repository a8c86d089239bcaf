"""The seat table: atomic lease grants per license, in Redis.

Each operation is one Lua script (files in ``lua/``, registered once with redis-py's
``register_script``, which runs EVALSHA and reloads on NoScriptError). Every key of a
license carries the hash tag ``{<license_id>}``, so each script touches one cluster
slot. Scripts answer a small code; this module turns it into a typed outcome and
translates redis-py failures into ``BackendUnavailable``.
"""

from __future__ import annotations

import secrets
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


def license_keys(license_id: str) -> list[str]:
    """The five keys of one license, in the order every script expects them."""
    tag = "{" + license_id + "}"
    return [f"seat:{tag}:{part}" for part in ("leases", "holders", "sessions", "ended", "gen")]


def _load_script(name: str) -> str:
    lua = resources.files("shared.seats") / "lua"
    return (lua / "_prelude.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class AcquireOutcome:
    kind: Literal["GRANTED", "EXISTING", "FULL", "STALE"]
    session_id: str | None = None
    expires_ms: int | None = None
    used: int = 0
    max_seats: int = 0
    acquired_ms: int | None = None
    earliest_expiry_ms: int | None = None


@dataclass(frozen=True)
class HeartbeatOutcome:
    kind: Literal["OK", "UNKNOWN", "FORBIDDEN", "ENDED", "STALE"]
    expires_ms: int | None = None
    hardware_id: str | None = None
    uid: str | None = None
    acquired_ms: int | None = None
    end_state: str | None = None


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


@dataclass(frozen=True)
class ReleaseOutcome:
    kind: Literal["ENDED", "ALREADY", "UNKNOWN", "FORBIDDEN", "ROLLED_BACK"]
    end: SessionEnd | None = None


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
    ) -> AcquireOutcome:
        reply = self._run(
            self._acquire,
            license_keys(license_id),
            [now_ms, ttl_ms, max_seats, generation, uid, hardware_id, new_session_id],
        )
        kind = _s(reply[0])
        if kind == "GRANTED":
            return AcquireOutcome(kind, _s(reply[1]), int(reply[2]), int(reply[3]), int(reply[4]), now_ms)
        if kind == "EXISTING":
            return AcquireOutcome(kind, _s(reply[1]), int(reply[2]), int(reply[3]), int(reply[4]), int(reply[5]))
        if kind == "FULL":
            return AcquireOutcome(kind, used=int(reply[1]), max_seats=int(reply[2]), earliest_expiry_ms=int(reply[3]))
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
    ) -> HeartbeatOutcome:
        reply = self._run(
            self._heartbeat,
            license_keys(license_id),
            [now_ms, ttl_ms, generation, session_id, caller_uid, "1" if may_act_for_others else "0"],
        )
        kind = _s(reply[0])
        if kind == "OK":
            return HeartbeatOutcome(kind, int(reply[1]), _s(reply[2]), _s(reply[3]), int(reply[4]))
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
        end_state: Literal["released", "forced", "revoked", "rollback"] = "released",
    ) -> ReleaseOutcome:
        reply = self._run(
            self._release,
            license_keys(license_id)[:4],
            [now_ms, session_id, caller_uid, "1" if may_act_for_others else "0", end_state],
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
            pipe = self._redis.pipeline(transaction=True)
            pipe.zrem(keys[3], *session_ids)
            pipe.hdel(keys[2], *session_ids)
            pipe.execute()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise BackendUnavailable("redis") from exc
