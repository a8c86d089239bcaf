"""The sweep's side of the seat table: the index of licenses with leases, per-license
sweep batches and verification, the fenced lock, the recovery epoch and the revival
counter. (Ending a lease and restoring a table are the seat table's, for the sweep too.)
Every Redis call goes through redis_unavailable().
"""

from __future__ import annotations

from typing import Any

from shared.domain.leases import SweepBatch, SweepLockLost
from shared.seats.keys import (
    AUDIT_CURSOR,
    INDEX_SHARDS,
    RECOVERY_CURSOR,
    RECOVERY_EPOCH,
    REVIVED_COUNTER,
    SWEEP_FENCE,
    SWEEP_LOCK,
    LicenseKeys,
    index_key,
    index_shard,
)
from shared.seats.redis_calls import RedisLike, load_script, redis_unavailable, text
from shared.seats.replies import decode_sweep_batch


class SweepLock:
    """A Redis lock whose value is a fencing token that only ever grows."""

    def __init__(self, client: RedisLike):
        self._redis = client
        self._release = client.register_script(load_script("release_lock", with_prelude=False))
        self.token: str | None = None

    def acquire(self, ttl_ms: int) -> bool:
        with redis_unavailable():
            token = str(self._redis.incr(SWEEP_FENCE))
            if self._redis.set(SWEEP_LOCK, token, nx=True, px=ttl_ms):
                self.token = token
                return True
        return False

    def check(self) -> None:
        """Raise SweepLockLost unless this sweep still holds the lock (before every batch of writes)."""
        with redis_unavailable():
            current = self._redis.get(SWEEP_LOCK)
        if current is None or text(current) != self.token:
            raise SweepLockLost(f"sweep lock {self.token} lost")

    def forfeit(self) -> None:
        """The lock passed to another sweep: it is not ours to release any more."""
        self.token = None

    def release(self) -> None:
        if self.token is not None:
            with redis_unavailable():
                self._release(keys=[SWEEP_LOCK], args=[self.token])
            self.token = None


class SweepLedger:
    """What the sweep reads and changes in Redis, license by license."""

    shards = INDEX_SHARDS

    def __init__(self, client: RedisLike):
        self._redis = client
        self._sweep = client.register_script(load_script("sweep_license"))
        self._mark_verified = client.register_script(load_script("mark_verified"))
        self._mark_recovered = client.register_script(load_script("mark_recovered"))

    def _run(self, script: Any, license_id: str, args: list[Any]) -> Any:
        with redis_unavailable():
            return script(keys=LicenseKeys.of(license_id).in_script_order(), args=args)

    def lock(self) -> SweepLock:
        return SweepLock(self._redis)

    # -- the recovery epoch and the revival counter ---------------------------------------
    def unrecovered_run(self) -> str | None:
        """This Redis process's run id if no recovery walk has completed in it yet (it
        restarted, a replica took over, or it was flushed), else None."""
        with redis_unavailable():
            run_id = text(self._redis.info("server")["run_id"])
            epoch = self._redis.get(RECOVERY_EPOCH)
        return None if epoch is not None and text(epoch) == run_id else run_id

    def mark_recovered(self, run_id: str) -> bool:
        """Record the walk as complete, unless Redis changed process since it began (then
        the next sweep walks again). False in that case."""
        with redis_unavailable():
            return bool(self._mark_recovered(keys=[RECOVERY_EPOCH], args=[run_id]))

    def recovery_cursor(self, run_id: str) -> str:
        """Where an unfinished recovery walk in this Redis process stopped ("" to start)."""
        with redis_unavailable():
            saved = self._redis.get(RECOVERY_CURSOR)
        walked_in, _, after = text(saved).partition(" ") if saved is not None else ("", "", "")
        return after if walked_in == run_id else ""

    def save_recovery_cursor(self, run_id: str, after: str) -> None:
        with redis_unavailable():
            self._redis.set(RECOVERY_CURSOR, f"{run_id} {after}")

    def audit_cursor(self) -> str:
        with redis_unavailable():
            saved = self._redis.get(AUDIT_CURSOR)
        return text(saved) if saved is not None else ""

    def save_audit_cursor(self, after: str) -> None:
        with redis_unavailable():
            self._redis.set(AUDIT_CURSOR, after)

    def take_revivals(self) -> int:
        """Leases revived since the last call (the counter starts again at 0)."""
        with redis_unavailable():
            return int(self._redis.getdel(REVIVED_COUNTER) or 0)

    # -- the index ---------------------------------------------------------------------------
    def indexed_licenses(self, shard: int) -> list[str]:
        with redis_unavailable():
            return sorted(text(m) for m in self._redis.smembers(index_key(shard)))

    def unindex_if_idle(self, license_id: str) -> bool:
        """Drop a license with no lease, no pending end and no untaken count from the index, race-free.

        Remove first, then look: a grant or a counted refusal that lands in between
        re-indexes the license itself (each indexes after its write), and one that landed
        before is seen here.
        """
        key, keys = index_key(index_shard(license_id)), LicenseKeys.of(license_id)
        with redis_unavailable():
            self._redis.srem(key, license_id)
            recheck = self._redis.pipeline(transaction=False)  # both keys in the license's slot
            recheck.zcard(keys.leases)
            recheck.zcard(keys.ended)
            recheck.hexists(keys.usage, "changed")  # counters the sweep has not taken yet
            if any(recheck.execute()):
                self._redis.sadd(key, license_id)
                return False
        return True

    # -- one license ---------------------------------------------------------------------------
    def sweep_batch(self, license_id: str, *, now_ms: int, batch: int, settle_until_ms: int,
                    verify_before_ms: int) -> SweepBatch:
        return decode_sweep_batch(self._run(self._sweep, license_id,
                                            [now_ms, batch, settle_until_ms, verify_before_ms]))

    def mark_verified(self, license_id: str, session_ids: list[str]) -> None:
        if session_ids:
            self._run(self._mark_verified, license_id, list(session_ids))
