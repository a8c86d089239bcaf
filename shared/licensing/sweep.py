"""The sweep: close what crashed clients left, and rebuild Redis after it lost data.

Cloud Scheduler calls it every minute. One run, under a Redis lock whose fencing token
is re-checked before every batch of writes:
    1. recovery   if this Redis process has not been walked yet (it restarted, a replica
                  took over, or it was flushed: the epoch key does not hold its run id),
                  every license with an active session or a held seat in Firestore is
                  rebuilt (rebuild.py). The epoch is set only once the whole walk is
                  done in the same process, so an interrupted recovery resumes next run.
                  (Licenses nobody touches until then are rebuilt by their first
                  acquire, heartbeat, release or count; the walk makes the counts and
                  the durable record agree without waiting for that.)
    2. per license with leases (a sharded Redis index, so cost follows live leases):
       rebuild    first, if its table is not trusted (a partial loss: its keys);
       expire     leases past expiry leave Redis (the scripts also do this lazily);
       settle     ended sessions in the outbox are closed in Firestore (ended_at = the
                  lease's expiry for expiries), in batches <= 500 writes, then forgotten;
                  expiries younger than the license's revive window wait for it;
       verify     a live lease older than a minute that was never matched with its
                  durable record is checked once: missing -> ended `unrecorded`; ended in
                  Firestore -> erased from Redis;
       usage      its usage counters, if they changed, are taken for the checkpoint; the
                  hour's first refusal for want of a seat, or first long queue wait, is
                  recorded as a notification (seats.exhausted, queue.long_wait).
    3. checkpoint the usage counters taken are written (usage_history.py), even by a run
                  that stops early.
    4. audit      a rotating slice of the sessions Firestore calls active is checked
                  against Redis: one whose trusted table has no record of it never held
                  a seat (a grant rolled back after its Firestore commit timed out, yet
                  landed) and is closed `not_held`. Steps 1-2 make the two agree for all
                  that Redis holds; this bounds the other direction at a slice per run.
    5. notify     notifications recorded since are published to Pub/Sub
                  (notification_outbox.py).
    6. usage      the hours that are due are closed into the usage history (only by a run
                  that visited every license), and days past the retention rolled up.
Everything is idempotent (deterministic event ids, merge writes, Redis outbox removed
only after Firestore has the end), so a failure anywhere leaves consistent partial
progress and the next run finishes it. A run stops at its time budget and resumes next.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from shared.clock import Clock
from shared.domain import EndReason, License, SessionEnd
from shared.domain.leases import LeaseRecord, SweepLockLost
from shared.domain.notifications import usage_notices
from shared.domain.times import HOUR_MS
from shared.domain.usage import hour_key
from shared.errors import BackendUnavailable, SeatTableRebuilding
from shared.licensing.anomaly_watch import AnomalyWatch
from shared.licensing.license_directory import LicenseDirectory
from shared.licensing.notification_outbox import NotificationOutbox
from shared.licensing.ports import DurableRecord, SeatLedger, SweepLedger, SweepLock
from shared.licensing.rebuild import SeatRebuilder
from shared.licensing.settlement import record_closed, settle
from shared.licensing.usage_history import UsageHistory

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
    rebuilt: int = 0  # licenses whose seat table was rebuilt from Firestore
    audited: int = 0  # Firestore-active sessions checked against Redis this run
    hours_closed: int = 0  # usage hours made final this run
    published: int = 0  # notifications published to Pub/Sub this run
    anomalies_evaluated: int = 0  # licenses whose conflict-detection notes were evaluated this run
    anomalies_raised: int = 0  # conflict flags raised (or raised again) this run
    started: float = field(default_factory=time.perf_counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "expired": self.expired, "reconciled": self.reconciled, "revived": self.revived,
            "duration_ms": round((time.perf_counter() - self.started) * 1000),
            "complete": self.complete, "skipped": self.skipped, "recovered": self.recovered,
            "licenses": self.licenses, "firestore_writes": self.firestore_writes, "rebuilt": self.rebuilt,
            "audited": self.audited, "hours_closed": self.hours_closed, "published": self.published,
            "anomalies": {"evaluated": self.anomalies_evaluated, "raised": self.anomalies_raised},
        }


class Sweeper:
    def __init__(self, *, seats: SeatLedger, ledger: SweepLedger, store: DurableRecord, licenses: LicenseDirectory,
                 history: UsageHistory, clock: Clock, outbox: NotificationOutbox | None = None,
                 anomalies: AnomalyWatch | None = None, budget_s: float = 45.0, batch: int = 250,
                 verify_after_s: int = 60, audit_slice: int = 500):
        self._seats = seats
        self._ledger = ledger
        self._store = store
        self._licenses = licenses
        self._history = history
        self._outbox = outbox
        self._anomalies = anomalies
        self._noticed: set[str] = set()  # notices recorded by this process (usage_notices' ids)
        self._clock = clock
        self._rebuilder = SeatRebuilder(seats=seats, store=store, usage=history.record, clock=clock)
        self._budget_s = budget_s
        self._batch = batch
        self._verify_after_ms = verify_after_s * 1000
        self._audit_slice = audit_slice

    def run(self) -> SweepReport:
        report = SweepReport()
        deadline = time.monotonic() + self._budget_s
        lock = self._ledger.lock()
        try:
            if not lock.acquire(ttl_ms=int((self._budget_s + 15) * 1000)):
                report.skipped = True  # another sweep is running; it does the work
                return report
            report.revived = self._ledger.take_revivals()
            run_id = self._ledger.unrecovered_run()
            if run_id is not None:
                report.recovered = True
                if not self._recover(report, lock, deadline, run_id) or not self._ledger.mark_recovered(run_id):
                    report.complete = False
                    return report
            keep_from_hour = self._history.first_open_hour(fresh=True)
            try:
                for shard in range(self._ledger.shards):
                    for license_id in self._ledger.indexed_licenses(shard):
                        if time.monotonic() >= deadline:
                            report.complete = False
                            return report
                        lock.check()
                        self._sweep_license(license_id, report, lock, keep_from_hour)
            finally:
                # Whatever was taken is written, even when the run stops early.
                report.firestore_writes += self._history.checkpoint()
            if time.monotonic() < deadline:
                self._audit(report, lock)
            if self._anomalies is not None and time.monotonic() < deadline:  # before the outbox: flags go out now
                watched = self._anomalies.run(lock, deadline)
                report.anomalies_evaluated, report.anomalies_raised = watched.evaluated, watched.raised
                report.firestore_writes += watched.firestore_writes
            if self._outbox is not None:
                report.published, writes = self._outbox.publish_pending(lock, deadline)
                report.firestore_writes += writes
            # Last: the seats' duties never wait on the usage history, nor fail with it.
            closed, writes = self._history.close_due_hours(lock, deadline)
            report.hours_closed, report.firestore_writes = closed, report.firestore_writes + writes
            report.firestore_writes += self._history.retain(lock)
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
    def _sweep_license(self, license_id: str, report: SweepReport, lock: SweepLock, keep_from_hour: str) -> None:
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
            if batch.needs_rebuild:
                if not self._rebuild(lic, report):
                    return  # another instance is rebuilding it; the next sweep goes on
                continue
            if batch.ends:
                report.expired += sum(1 for e in batch.ends if e.state == EndReason.EXPIRED)
                self._settle(lic, [e.as_end() for e in batch.ends], report)
            if batch.unverified:
                report.reconciled += self._verify(lic, batch.unverified, report)
            more = max(batch.expired, len(batch.ends), len(batch.unverified)) >= self._batch
            if not more:
                break
        self._notice_usage(lic, self._history.take(lic.id, keep_from_hour=keep_from_hour), report)
        if batch.live == 0 and batch.outbox_left == 0:
            self._ledger.unindex_if_idle(lic.id)

    def _notice_usage(self, lic: License, taken: dict[str, dict[str, int]], report: SweepReport) -> None:
        """Record what this hour's counters make known (seats exhausted, a long queue wait),
        once per hour each: the process remembers what it recorded, and a record made by
        another instance is refused by its deterministic id. The hour before counts too: a
        refusal in its last seconds is taken by the first sweep of the next."""
        now = self._clock.now_ms()
        for hour in sorted({hour_key(now - HOUR_MS), hour_key(now)}):
            for notice in usage_notices(lic.id, lic.tenant_id, hour, taken.get(hour, {}), max_seats=lic.max_seats,
                                        now_ms=now):
                if notice.id in self._noticed:
                    continue
                if self._store.record_notice(notice):
                    report.firestore_writes += 1
                self._noticed.add(notice.id)
        if len(self._noticed) > 100_000:  # a memo, not a record: forget it now and then
            self._noticed.clear()

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

    # -- sessions Firestore calls active that Redis never held ------------------------------
    def _audit(self, report: SweepReport, lock: SweepLock) -> None:
        after = self._ledger.audit_cursor()
        page = self._store.active_sessions_page(after=after, limit=self._audit_slice)
        report.audited = len(page)
        for license_id in sorted({s.license_id for s in page}):
            if not self._seats.trusted(license_id):
                continue  # its rebuild restores what Firestore holds
            sessions = [s for s in page if s.license_id == license_id]
            known = self._seats.known_sessions(license_id, [s.id for s in sessions])
            unknown = [s.id for s in sessions if s.id not in known]
            if not unknown:
                continue
            # Read again: a release may have closed one since the page was read (Redis
            # forgets a session only after Firestore has its end).
            current = self._store.sessions(unknown)
            never_held = [current[sid] for sid in unknown if sid in current and current[sid].status == "active"]
            entry = self._licenses.by_id(license_id)
            if entry is None or not never_held:
                continue
            lock.check()
            now = self._clock.now_ms()
            ends = [SessionEnd(s.id, EndReason.NOT_HELD, s.uid, s.hardware_id, s.acquired_ms, s.acquired_ms, now)
                    for s in never_held]
            report.reconciled += len(ends)
            report.firestore_writes += record_closed(self._store, entry.license, ends, actor="system")
        # the next run goes on from here; the end of the collection starts the round again
        self._ledger.save_audit_cursor(page[-1].id if len(page) == self._audit_slice else "")

    # -- recovery after Redis lost its data ------------------------------------------------
    def _rebuild(self, lic: License, report: SweepReport) -> bool:
        try:
            rebuilt = self._rebuilder.rebuild(lic)
        except SeatTableRebuilding:
            return False  # an acquire or heartbeat is rebuilding it right now
        if rebuilt is None:
            return True  # trusted already: rebuilt by a request since the loss
        report.rebuilt += 1
        report.reconciled += rebuilt.restored + rebuilt.closed
        report.firestore_writes += rebuilt.firestore_writes
        return True

    def _recover(self, report: SweepReport, lock: SweepLock, deadline: float, run_id: str) -> bool:
        """Rebuild every license that has an active session or a held seat in Firestore;
        False if the budget ran out first (the next run resumes where this one stopped).

        Session ids start with their license's id, so one document of the active sessions
        in id order names the next license, and `<license id>.~` (after every session id
        of it) skips the rest of its sessions: the walk reads a document per license, not
        per session. Tables already trusted (rebuilt by a request since the loss) are
        passed over before any Firestore read. Each run rebuilds at least one license, so
        the walk always advances.
        """
        for license_id in sorted({s.license_id for s in self._store.held_seats(now_ms=self._clock.now_ms())}):
            lock.check()
            self._recover_license(license_id, report)  # holds are rare: all of them, every run
        after, progressed = self._ledger.recovery_cursor(run_id), False
        while True:
            page = self._store.active_sessions_page(after=after, limit=1)
            if not page:
                return True
            if progressed and time.monotonic() >= deadline:
                self._ledger.save_recovery_cursor(run_id, after)
                return False
            lock.check()
            self._recover_license(page[0].license_id, report)
            after, progressed = f"{page[0].license_id}.~", True

    def _recover_license(self, license_id: str, report: SweepReport) -> None:
        if self._seats.trusted(license_id):
            return
        entry = self._licenses.by_id(license_id, fresh=True)
        if entry is not None:
            self._rebuild(entry.license, report)
