"""The sweep: close what crashed clients left, and rebuild Redis after it lost data.

Cloud Scheduler calls it every minute. One run, under a Redis lock whose fencing token
is re-checked before every batch of writes:
    1. recovery   if Redis lost its data (the epoch key is gone), what Firestore says
                  counts against the seats is put back: first the holds of ended borrows
                  and the borrowed sessions (their tokens are valid offline, out of
                  reach: they always count, until their end), then every other active
                  session, oldest first, never beyond max seats; the rest are closed
                  `evicted_on_recovery`. The epoch is set only once the whole walk is
                  done, so an interrupted recovery resumes next run.
    2. per license with leases (a sharded Redis index, so cost follows live leases):
       expire     leases past expiry leave Redis (the scripts also do this lazily);
       settle     ended sessions in the outbox are closed in Firestore (ended_at = the
                  lease's expiry for expiries), in batches <= 500 writes, then forgotten;
                  expiries younger than the license's revive window wait for it;
       verify     a live lease older than a minute that was never matched with its
                  durable record is checked once: missing -> ended `unrecorded`; ended in
                  Firestore -> erased from Redis.
Everything is idempotent (deterministic event ids, merge writes, Redis outbox removed
only after Firestore has the end), so a failure anywhere leaves consistent partial
progress and the next run finishes it. A run stops at its time budget and resumes next.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.clock import Clock
from shared.domain import EndReason, License, SessionEnd, SessionRecord
from shared.domain.leases import LeaseRecord, RestoreEntry, SweepLockLost
from shared.errors import BackendUnavailable
from shared.licensing.license_directory import LicenseDirectory
from shared.licensing.ports import DurableRecord, SeatLedger, SweepLedger, SweepLock
from shared.licensing.settlement import record_closed, settle

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    expired: int = 0
    reconciled: int = 0
    revived: int = 0
    firestore_writes: int = 0
    licenses: int = 0
    complete: bool = True
    skipped: bool = False
    recovered: bool = False
    started: float = field(default_factory=time.perf_counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "expired": self.expired, "reconciled": self.reconciled, "revived": self.revived,
            "duration_ms": round((time.perf_counter() - self.started) * 1000),
            "complete": self.complete, "skipped": self.skipped, "recovered": self.recovered,
            "licenses": self.licenses, "firestore_writes": self.firestore_writes,
        }


class Sweeper:
    def __init__(self, *, seats: SeatLedger, ledger: SweepLedger, store: DurableRecord, licenses: LicenseDirectory,
                 clock: Clock, budget_s: float = 45.0, batch: int = 250, verify_after_s: int = 60):
        self._seats = seats
        self._ledger = ledger
        self._store = store
        self._licenses = licenses
        self._clock = clock
        self._budget_s = budget_s
        self._batch = batch
        self._verify_after_ms = verify_after_s * 1000

    def run(self) -> SweepReport:
        report = SweepReport()
        deadline = time.monotonic() + self._budget_s
        lock = self._ledger.lock()
        try:
            if not lock.acquire(ttl_ms=int((self._budget_s + 15) * 1000)):
                report.skipped = True  # another sweep is running; it does the work
                return report
            report.revived = self._ledger.take_revivals()
            if self._ledger.redis_lost_data():
                report.recovered = True
                if not self._recover(report, lock, deadline):
                    report.complete = False
                    return report
                self._ledger.mark_recovered(self._clock.now_ms())
            for shard in range(self._ledger.shards):
                for license_id in self._ledger.indexed_licenses(shard):
                    if time.monotonic() >= deadline:
                        report.complete = False
                        return report
                    lock.check()
                    self._sweep_license(license_id, report, lock)
            return report
        except SweepLockLost:
            # Our lock expired and another sweep holds it now: it carries on from here.
            log.warning("sweep stopped: lock %s lost", lock.token)
            lock.forfeit()
            report.complete = False
            return report
        finally:
            try:
                lock.release()
            except BackendUnavailable:
                log.warning("sweep lock not released; it expires by itself")

    # -- one license ---------------------------------------------------------------
    def _sweep_license(self, license_id: str, report: SweepReport, lock: SweepLock) -> None:
        entry = self._licenses.by_id(license_id)
        if entry is None:
            log.warning("sweep: license %s has leases but no record; left for revocation", license_id)
            return
        lic = entry.license
        report.licenses += 1
        while True:
            now = self._clock.now_ms()
            batch = self._ledger.sweep_batch(
                lic.id, now_ms=now, batch=self._batch,
                settle_until_ms=now - lic.revive_window_s * 1000, verify_before_ms=now - self._verify_after_ms,
            )
            lock.check()
            if batch.ends:
                report.expired += sum(1 for e in batch.ends if e.state == EndReason.EXPIRED)
                self._settle(lic, [e.as_end() for e in batch.ends], report)
            if batch.unverified:
                report.reconciled += self._verify(lic, batch.unverified, report)
            more = max(batch.expired, len(batch.ends), len(batch.unverified)) >= self._batch
            if not more:
                break
        if batch.live == 0 and batch.outbox_left == 0:
            self._ledger.unindex_if_idle(lic.id)

    def _settle(self, lic: License, ends: list[SessionEnd], report: SweepReport) -> None:
        report.firestore_writes += settle(self._store, self._seats, lic, ends, actor="system")

    def _verify(self, lic: License, leases: list[LeaseRecord], report: SweepReport) -> int:
        durable = self._store.sessions([lease.session_id for lease in leases])
        matched: list[str] = []
        unrecorded: list[SessionEnd] = []
        fixed = 0
        for lease in leases:
            record = durable.get(lease.session_id)
            if record is not None and record.status == "active":
                matched.append(lease.session_id)
            elif record is not None:
                # Firestore already closed it: Redis just forgets the lease.
                self._seats.rollback(lic.id, lease.session_id, now_ms=self._clock.now_ms())
                fixed += 1
            else:
                outcome = self._seats.release(lic.id, lease.session_id, now_ms=self._clock.now_ms(), caller_uid="",
                                              may_act_for_others=True, end=EndReason.UNRECORDED)
                if outcome.end is not None:
                    unrecorded.append(outcome.end)
        if unrecorded:
            self._settle(lic, unrecorded, report)
        self._ledger.mark_verified(lic.id, matched)
        return fixed + len(unrecorded)

    # -- recovery after Redis lost its data ------------------------------------------------
    def _recover(self, report: SweepReport, lock: SweepLock, deadline: float) -> bool:
        """Walk every active session, license by license; False if the budget ran out.

        Pages come in session-id order, and a session id starts with its license id, so
        each license's sessions are contiguous; the last license of a page may go on in
        the next one and is carried over until it is complete.
        """
        holds = sorted(self._store.held_seats(now_ms=self._clock.now_ms()), key=lambda s: s.license_id)
        for license_id, group in itertools.groupby(holds, key=lambda s: s.license_id):
            lock.check()
            self._restore_license(license_id, [], report, holds=list(group))
        after, carry = "", list[SessionRecord]()
        while True:
            page = self._store.active_sessions_page(after=after, limit=500)
            sessions = carry + page
            open_license = page[-1].license_id if page else None
            carry = [s for s in sessions if s.license_id == open_license]
            complete = [s for s in sessions if s.license_id != open_license]
            for license_id, group in itertools.groupby(complete, key=lambda s: s.license_id):
                lock.check()
                self._restore_license(license_id, list(group), report)
            if not page:
                return True
            after = page[-1].id
            if time.monotonic() >= deadline:
                return False

    def _restore_license(self, license_id: str, sessions: list[SessionRecord], report: SweepReport, *,
                         holds: Sequence[SessionRecord] = ()) -> None:
        entry = self._licenses.by_id(license_id, fresh=True)
        if entry is None:
            return
        lic, now = entry.license, self._clock.now_ms()
        # Borrows first (they count whatever else happens), then the oldest sessions.
        sessions.sort(key=lambda s: (not (s.borrowed_until_ms or 0) > now, s.acquired_ms, s.id))
        if lic.revoked_ms is not None:
            # A revoked license gets no seat back (nothing may sign a token for it): its
            # sessions that the revocation could not reach in Redis close here.
            revoked = [SessionEnd(s.id, EndReason.REVOKED, s.uid, s.hardware_id, s.acquired_ms,
                                  s.last_heartbeat_ms or s.acquired_ms, now) for s in sessions]
            report.reconciled += len(revoked)
            report.firestore_writes += record_closed(self._store, lic, revoked, actor="system")
            return
        entries = [RestoreEntry(h.id, h.uid, h.hardware_id, h.acquired_ms, h.seat_held_until_ms, hold=True)
                   for h in holds]
        entries += [RestoreEntry(s.id, s.uid, s.hardware_id, s.acquired_ms, s.borrowed_until_ms) for s in sessions]
        outcomes = self._ledger.restore(lic.id, entries, now_ms=now, max_seats=lic.max_seats,
                                       ttl_ms=lic.lease_ttl_s * 1000)
        if any(o == "held" for o in outcomes[:len(holds)]):
            self._seats.index_license(lic.id)  # the sweep drops each hold when it ends
        outcomes = outcomes[len(holds):]
        closed: list[SessionEnd] = []
        for session, outcome in zip(sessions, outcomes, strict=True):
            if outcome == "restored":
                report.reconciled += 1
            elif outcome in ("evicted", "superseded"):
                closed.append(SessionEnd(session.id, EndReason.EVICTED_ON_RECOVERY, session.uid, session.hardware_id,
                                         session.acquired_ms, session.last_heartbeat_ms or session.acquired_ms, now))
        if any(o == "restored" for o in outcomes):
            self._seats.index_license(lic.id)
        report.reconciled += len(closed)
        # These were never in Redis (it lost them): only the durable record closes.
        report.firestore_writes += record_closed(self._store, lic, closed, actor="system")
