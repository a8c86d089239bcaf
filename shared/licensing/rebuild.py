"""Rebuilding one license's seat table from the durable record, after Redis may have lost
part of it (DESIGN: docs/design.md, "Redis loss"; the detection is `origin` in
shared/seats/lua/_prelude.lua).

Firestore holds every grant a client was told about (acquire commits the session before
answering), every borrow's end, and every hold of an ended borrow. Redis holds what a
client's lease extends to, which a loss may have taken. A rebuild puts back every session
Firestore calls active, with a lease no lost extension can exceed (one ttl from now; a
borrow until its end), keeps what Redis still has, and only then trusts the table again.
It never takes a seat from anyone: restored leases may count more than max seats until
the extra ones lapse, and meanwhile nothing new is granted.

One rebuild per license at a time (a Redis lock): the acquire, heartbeat, release or
count that finds the table untrusted rebuilds it inline and carries on; a concurrent one
waits for that rebuild (up to `wait_s`) and carries on too, or gets 503 UNAVAILABLE with
Retry-After: 1 if it takes longer. The sweep rebuilds every license after a full loss,
and any license it finds untrusted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from shared.clock import Clock
from shared.domain import EndReason, License, SessionEnd
from shared.domain.leases import RestoreEntry
from shared.errors import BackendUnavailable, SeatTableRebuilding
from shared.licensing.ports import DurableRecord, SeatLedger, UsageRecord
from shared.licensing.settlement import record_closed

log = logging.getLogger(__name__)


class _Outcome(Protocol):
    @property
    def kind(self) -> str: ...


Outcome = TypeVar("Outcome", bound=_Outcome)


@dataclass(frozen=True)
class RebuildReport:
    restored: int  # put back (Redis had lost them)
    kept: int  # still in Redis, lease raised to cover a lost extension
    closed: int  # closed in Firestore: superseded, or of a revoked license
    firestore_writes: int
    duration_ms: int


class SeatRebuilder:
    def __init__(self, *, seats: SeatLedger, store: DurableRecord, usage: UsageRecord, clock: Clock,
                 lock_ttl_s: int = 30, wait_s: float = 3.0):
        self._seats = seats
        self._store = store
        self._usage = usage
        self._clock = clock
        self._lock_ttl_ms = lock_ttl_s * 1000
        self._wait_s = wait_s

    def rebuild(self, lic: License) -> RebuildReport | None:
        """None if the table was trusted already (rebuilt meanwhile by another instance).
        Raises SeatTableRebuilding when another instance is at it."""
        started = time.perf_counter()
        token = self._seats.lock_rebuild(lic.id, ttl_ms=self._lock_ttl_ms)
        if token is None:
            # Another instance is at it (the first requests after a loss arrive together):
            # wait for it, then the caller's operation runs on the rebuilt table.
            deadline = time.monotonic() + self._wait_s
            while self._seats.rebuilding(lic.id):
                if time.monotonic() >= deadline:
                    raise SeatTableRebuilding()
                time.sleep(0.02)
            return None
        try:
            # Rebuilt by someone else since the caller looked: nothing to read or do.
            report = None if self._seats.trusted(lic.id) else self._rebuild(lic, started)
        finally:
            self._seats.unlock_rebuild(lic.id, token)
        if report is None:
            return None
        level = logging.WARNING if report.restored or report.kept or report.closed else logging.INFO
        log.log(level, "seat table of %s rebuilt from Firestore: %d restored, %d kept, %d closed in %d ms",
                    lic.id, report.restored, report.kept, report.closed, report.duration_ms)
        return report

    def on_trusted_table(self, lic: License, operation: Callable[[], Outcome]) -> Outcome:
        """Run a seat operation; if it found the table untrusted (REBUILD), rebuild it and
        run it once more. Raises SeatTableRebuilding, or BackendUnavailable if Redis
        changed process again in between."""
        outcome = operation()
        if outcome.kind != "REBUILD":
            return outcome
        self.rebuild(lic)
        outcome = operation()
        if outcome.kind == "REBUILD":
            raise BackendUnavailable("redis")
        return outcome

    def _rebuild(self, lic: License, started: float) -> RebuildReport | None:
        now = self._clock.now_ms()
        holds = self._store.held_seats(now_ms=now, license_id=lic.id)
        sessions = self._store.active_sessions(lic.id)
        closed: list[SessionEnd] = []
        if lic.revoked_ms is not None:
            # A revoked license gets no seat back (nothing may sign a token for it): its
            # sessions that the revocation could not reach in Redis close here.
            closed = [SessionEnd(s.id, EndReason.REVOKED, s.uid, s.hardware_id, s.acquired_ms,
                                 s.last_heartbeat_ms or s.acquired_ms, now) for s in sessions]
            sessions = []
        # A user + hardware gets a new session only after its older lease lapsed: the newest
        # is the one its holder may hold, so it goes first and the older ones are superseded.
        sessions.sort(key=lambda s: (s.acquired_ms, s.id), reverse=True)
        entries = [RestoreEntry(h.id, h.uid, h.hardware_id, h.acquired_ms, h.seat_held_until_ms, hold=True, ci=h.ci)
                   for h in holds]
        entries += [RestoreEntry(s.id, s.uid, s.hardware_id, s.acquired_ms, s.borrowed_until_ms, groups=s.groups,
                                 reserved_for=s.reserved_for, overage=s.overage, ci=s.ci) for s in sessions]
        # Live here but not active in Firestore: an end that Redis lost (a release, say,
        # that Firestore has) is erased first, while the table is still untrusted: nothing
        # may hand it out again, and it must not supersede the session its user + hardware
        # was granted since (restore_seats keeps one live lease per pair). One with no record
        # at all may be a grant whose commit is in flight: the sweep's verify step judges it.
        listed = {entry.session_id for entry in entries}
        unlisted = [lease.session_id for lease in self._seats.live_sessions(lic.id, now_ms=now, limit=100_000)
                    if lease.state == "live" and lease.session_id not in listed]
        durable = self._store.sessions(unlisted) if unlisted else {}
        for session_id in unlisted:
            if session_id in durable and durable[session_id].status != "active":
                self._seats.rollback(lic.id, session_id, now_ms=now)
        # The usage counters of the hours not closed yet, as the sweep last checkpointed them,
        # while the table is untrusted: nothing counts until they are back (shared/licensing/
        # usage_history.py), so the loss costs at most the counts since that sweep.
        self._seats.restore_usage(lic.id, self._usage.license_checkpoints(lic.id))
        outcomes = self._seats.restore(lic.id, entries, now_ms=now, ttl_ms=lic.lease_ttl_s * 1000, complete=True)
        if outcomes is None:
            return None  # trusted already: kept since its rebuild, nothing to put back
        session_outcomes = outcomes[len(holds):]
        closed += [SessionEnd(s.id, EndReason.EVICTED_ON_RECOVERY, s.uid, s.hardware_id, s.acquired_ms,
                              s.last_heartbeat_ms or s.acquired_ms, now)
                   for s, outcome in zip(sessions, session_outcomes, strict=True) if outcome == "superseded"]
        if any(o in ("restored", "kept", "held") for o in outcomes):
            self._seats.index_license(lic.id)  # the sweep expires and settles what was put back
        # Never in Redis (it lost them) or not to be: only the durable record closes.
        writes = record_closed(self._store, lic, closed, actor="system")
        return RebuildReport(
            restored=sum(o in ("restored", "held") for o in outcomes), kept=outcomes.count("kept"),
            closed=len(closed), firestore_writes=writes, duration_ms=round((time.perf_counter() - started) * 1000),
        )
