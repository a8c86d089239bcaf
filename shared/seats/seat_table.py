"""The seat table's hot path: atomic lease grants per license, in Redis.

Each operation is one Lua script (files in ``lua/``, registered once with redis-py's
``register_script``, which runs EVALSHA and reloads on NoScriptError). Every key of a
license carries the hash tag ``{<license_id>}`` (keys.py), so each script touches one
cluster slot. Scripts answer a small code that replies.py turns into a typed outcome;
redis-py failures become ``BackendUnavailable`` at one point (redis_calls.py). The
sweep's side of the same keys is sweep_ledger.py.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from shared.domain import EndReason
from shared.domain.leases import (
    AcquireOutcome,
    HeartbeatOutcome,
    LeaseRecord,
    QueueTicket,
    ReleaseOutcome,
    RestoreEntry,
    SeatCount,
)
from shared.domain.usage import hour_key, is_counter
from shared.errors import BackendUnavailable
from shared.seats.keys import REVIVED_COUNTER, LicenseKeys, index_key, index_shard
from shared.seats.redis_calls import RedisLike, load_script, redis_unavailable, text
from shared.seats.replies import (
    decode_acquire,
    decode_count,
    decode_heartbeat,
    decode_queue,
    decode_release,
    decode_restore,
    parse_lease_record,
    parse_ticket,
)

log = logging.getLogger(__name__)

ROLLBACK = "rollback"
"""release_seat's erase mode: a grant whose durable record could not be written leaves no trace."""


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _json(value: Any) -> str:
    """A script argument holding JSON; '' for None (the scripts' "none")."""
    return "" if value is None else json.dumps(value, separators=(",", ":"))


class SeatTable:
    """Seat operations of every license, over one Redis connection pool.

    `wait_replicas` > 0: a grant is answered only once that many replicas acknowledged it
    (Redis WAIT, on the connection that wrote it, within `wait_timeout_ms`), so a failover
    cannot lose it; otherwise it is rolled back and 503 answered, or with
    `unreplicated="grant"` answered anyway (and logged).
    """

    def __init__(self, client: RedisLike, *, wait_replicas: int = 0, wait_timeout_ms: int = 100,
                 unreplicated: str = "refuse"):
        self._redis = client
        self._wait_replicas = wait_replicas
        self._wait_timeout_ms = wait_timeout_ms
        self._unreplicated = unreplicated
        self._acquire = client.register_script(load_script("acquire_seat"))
        self._heartbeat = client.register_script(load_script("heartbeat_seat"))
        self._release = client.register_script(load_script("release_seat"))
        self._count = client.register_script(load_script("count_seats"))
        self._restore = client.register_script(load_script("restore_seats"))
        self._take_usage = client.register_script(load_script("take_usage"))
        self._trusted = client.register_script(load_script("table_trusted"))
        self._restore_usage = client.register_script(load_script("restore_usage"))
        self._count_denial = client.register_script(load_script("count_denial"))
        self._cancel_ticket = client.register_script(load_script("cancel_ticket"))
        self._queue = client.register_script(load_script("queue_tickets"))
        self._seat_use = client.register_script(load_script("seat_use"))
        self._unlock = client.register_script(load_script("release_lock", with_prelude=False))

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
                hardware_id: str, new_session_id: str, max_sessions_per_user: int = 0,
                policy: dict[str, Any] | None = None, groups: tuple[str, ...] = (), ticket: str | None = None,
                wait: bool = False, new_ticket: str = "", shown: dict[str, Any] | None = None) -> AcquireOutcome:
        """`policy`: the license's SeatPolicy.script_policy (None: a bare count); `groups`:
        the caller's groups under it (recorded with the lease). `ticket`: a poll of the
        caller's place in the queue; `wait`: with no seat, queue the caller as `new_ticket`.
        `shown`: what administrators see of a new lease besides its user and hardware
        (e-mail, client hostname and version: LeaseRecord.shown)."""
        args = [now_ms, ttl_ms, max_seats, generation, uid, hardware_id, new_session_id, hour_key(now_ms),
                max_sessions_per_user, _json(policy), _json(list(groups)) if policy is not None else "",
                ticket or "", _flag(wait), new_ticket, _json(shown or None)]
        if not self._wait_replicas:
            return decode_acquire(self._run(self._acquire, license_id, args), now_ms=now_ms)
        with redis_unavailable():
            pipe = self._redis.pipeline(transaction=False)  # one connection: WAIT covers this write
            self._acquire(keys=LicenseKeys.of(license_id).in_script_order(), args=args, client=pipe)
            pipe.execute_command("WAIT", self._wait_replicas, self._wait_timeout_ms)
            reply, acknowledged = pipe.execute()
        outcome = decode_acquire(reply, now_ms=now_ms)
        if outcome.kind == "GRANTED" and int(acknowledged) < self._wait_replicas:
            if self._unreplicated == "grant":
                log.warning("grant %s answered before a replica had it (%d of %d acknowledged)",
                            outcome.session_id, int(acknowledged), self._wait_replicas)
            else:
                self.rollback(license_id, outcome.session_id, now_ms=now_ms)
                refused = BackendUnavailable("redis")
                refused.message = "no Redis replica acknowledged the grant in time; it was undone, retry shortly"
                raise refused
        return outcome

    def heartbeat(self, license_id: str, session_id: str, *, generation: str, now_ms: int, ttl_ms: int,
                  caller_uid: str, may_act_for_others: bool, revive_window_ms: int = 0, max_seats: int = 0,
                  borrow: bool = False, proven: bool | None = None,
                  policy: dict[str, Any] | None = None) -> HeartbeatOutcome:
        """`proven`: for a lease restored after a loss (the script answers PROOF first),
        whether the caller showed a valid lease token of this session. `policy`: as for
        acquire (a revival takes a seat as an acquire would)."""
        reply = self._run(self._heartbeat, license_id, [
            now_ms, ttl_ms, generation, session_id, caller_uid, _flag(may_act_for_others), revive_window_ms,
            max_seats, _flag(borrow), "" if proven is None else _flag(proven), _json(policy)])
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

    def cancel_ticket(self, license_id: str, ticket: str, *, caller_uid: str, may_act_for_others: bool) -> str:
        """Leave the wait queue: CANCELLED, UNKNOWN (no such ticket now) or FORBIDDEN."""
        return text(self._run(self._cancel_ticket, license_id, [ticket, caller_uid, _flag(may_act_for_others)])[0])

    def remove_ticket(self, license_id: str, ticket: str) -> QueueTicket | None:
        """An administrator takes a ticket out of the queue (its held seat passes on): the
        ticket as it was, or None if it is not in the queue now."""
        reply = self._run(self._cancel_ticket, license_id, [ticket, "", _flag(True)])
        return parse_ticket(ticket, reply[1]) if text(reply[0]) == "CANCELLED" else None

    def queue(self, license_id: str, *, limit: int = 500) -> list[QueueTicket]:
        """The license's wait queue in order (for administrators)."""
        return decode_queue(self._run(self._queue, license_id, [limit]))

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

    # -- rebuilding a table Redis may have lost part of ------------------------------------
    def lock_rebuild(self, license_id: str, *, ttl_ms: int) -> str | None:
        """Become the one rebuilding the license's table: a token to unlock with, or None."""
        token = secrets.token_hex(8)
        with redis_unavailable():
            taken = self._redis.set(LicenseKeys.of(license_id).rebuild_lock, token, nx=True, px=ttl_ms)
        return token if taken else None

    def trusted(self, license_id: str) -> bool:
        """Whether the license's table was rebuilt in this Redis process (nothing to do)."""
        return bool(self._run(self._trusted, license_id, []))

    def rebuilding(self, license_id: str) -> bool:
        with redis_unavailable():
            return bool(self._redis.exists(LicenseKeys.of(license_id).rebuild_lock))

    def unlock_rebuild(self, license_id: str, token: str) -> None:
        with redis_unavailable():
            self._unlock(keys=[LicenseKeys.of(license_id).rebuild_lock], args=[token])

    def restore(self, license_id: str, entries: list[RestoreEntry], *, now_ms: int, ttl_ms: int,
                complete: bool) -> list[str] | None:
        """Put back what the durable record says counts (restore_seats.lua); `complete`: the
        entries are all of it, so the table is trusted again (None: it was already, and
        nothing was done). One outcome per entry."""
        args: list[Any] = [now_ms, ttl_ms, _flag(complete), secrets.token_hex(8)]
        for entry in entries:
            seat_class: dict[str, Any] = {}
            if entry.groups:
                seat_class["g"] = list(entry.groups)
            if entry.reserved_for:
                seat_class["rv"] = entry.reserved_for
            if entry.overage:
                seat_class["ov"] = 1
            if entry.ci:
                seat_class["ci"] = 1
            args.extend([entry.session_id, entry.uid, entry.hardware_id, entry.acquired_ms, entry.until_ms or 0,
                         "h" if entry.hold else "s", _json(seat_class) if seat_class else ""])
        return decode_restore(self._run(self._restore, license_id, args))

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

    def known_sessions(self, license_id: str, session_ids: list[str]) -> set[str]:
        """Which of these sessions the license's table has a record of (live or ended)."""
        return set(self.lease_records(license_id, session_ids))

    def lease_records(self, license_id: str, session_ids: list[str]) -> dict[str, LeaseRecord]:
        """The table's records of these sessions (live or ended), by id, for those it has."""
        if not session_ids:
            return {}
        with redis_unavailable():
            raws = self._redis.hmget(LicenseKeys.of(license_id).sessions, session_ids)
        return {sid: parse_lease_record(sid, raw) for sid, raw in zip(session_ids, raws, strict=True)
                if raw is not None}

    def live_count(self, license_id: str, *, now_ms: int) -> int:
        """How many seats of the license's max_seats count now (no generation check; the CI
        pool's leases are not among them: seat_use)."""
        return self.seat_use(license_id, now_ms=now_ms)[0]

    def seat_use(self, license_id: str, *, now_ms: int) -> tuple[int, int]:
        """(seats of max_seats counted now, seats of the CI pool held now); no generation check."""
        used, in_pool = self._run(self._seat_use, license_id, [now_ms])
        return int(used), int(in_pool)

    def seat_use_many(self, license_ids: list[str], *, now_ms: int) -> list[tuple[int, int]]:
        """seat_use of each license, in one round trip (a page of licenses)."""
        if not license_ids:
            return []
        with redis_unavailable():
            pipe = self._redis.pipeline(transaction=False)
            for license_id in license_ids:
                self._seat_use(keys=LicenseKeys.of(license_id).in_script_order(), args=[now_ms], client=pipe)
            return [(int(used), int(in_pool)) for used, in_pool in pipe.execute()]

    # -- usage counters (shared/domain/usage.py) -----------------------------------------
    def count_denial(self, license_id: str, *, now_ms: int, reason: str) -> bool:
        """Count an acquire refused before the seat table was asked. False: not counted, the
        table awaits its rebuild (count_denial.lua)."""
        if not self._run(self._count_denial, license_id, [hour_key(now_ms), reason]):
            return False
        self.index_license(license_id)  # after counting: the sweep takes the count
        return True

    def hourly_usage(self, license_id: str) -> dict[str, dict[str, int]]:
        """{"YYYY-MM-DDTHH": {counter: n}} for the hours Redis holds counters of."""
        with redis_unavailable():
            fields = self._redis.hgetall(LicenseKeys.of(license_id).usage)
        return _usage_hours(fields.items())

    def take_usage_changes(self, license_id: str, *, keep_from_hour: str) -> dict[str, dict[str, int]]:
        """The license's counters (as hourly_usage) if they changed since the last call, else
        {}; counters of hours before `keep_from_hour` (closed, so durable) are dropped."""
        flat = self._run(self._take_usage, license_id, [keep_from_hour])
        return _usage_hours(zip(flat[::2], flat[1::2], strict=True))

    def mark_usage_changed(self, license_id: str) -> None:
        """Their durable copy failed: the next take returns them again."""
        with redis_unavailable():
            self._redis.hset(LicenseKeys.of(license_id).usage, "changed", 1)

    def restore_usage(self, license_id: str, hours: dict[str, dict[str, int]]) -> None:
        """Raise the counters to their durable values (never lowers one)."""
        args: list[Any] = [arg for hour, counters in hours.items() for name, value in counters.items()
                           for arg in (f"{hour}:{name}", value)]
        if args:
            self._run(self._restore_usage, license_id, args)


def _usage_hours(fields: Any) -> dict[str, dict[str, int]]:
    hours: dict[str, dict[str, int]] = {}
    for field, value in fields:
        hour, colon, name = text(field).partition(":")
        if colon and is_counter(name):  # not the "changed" flag, nor a "who" marker
            hours.setdefault(hour, {})[name] = int(value)
    return dict(sorted(hours.items()))
