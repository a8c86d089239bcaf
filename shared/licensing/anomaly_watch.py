"""Conflict detection's evaluation: the sweep's pass over the licenses noted since the last one.

At most one pass per ANOMALY_CHECK_INTERVAL_S (a Redis key any sweep takes first). A pass
reads, for each license noted since the last pass (shared/seats/signals.py), the notes of
its longest rule window, evaluates its rules (shared/domain/anomalies.py), and raises a
flag for each finding (the store records the flag and, when it is raised, its
anomaly.detected event in one transaction; the sweep's outbox publishes it). It stops at
the sweep's deadline and the next pass goes on from the last license it finished.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shared.clock import Clock
from shared.domain.anomalies import evaluate
from shared.licensing.license_directory import LicenseDirectory
from shared.licensing.ports import DurableRecord, SignalReader, SweepLock

LICENSES_PER_PASS = 500


@dataclass
class WatchReport:
    evaluated: int = 0
    raised: int = 0  # flags raised (or raised again) now
    firestore_writes: int = 0


class AnomalyWatch:
    def __init__(self, *, signals: SignalReader, store: DurableRecord, licenses: LicenseDirectory, clock: Clock,
                 interval_s: int = 300):
        self._signals = signals
        self._store = store
        self._licenses = licenses
        self._clock = clock
        self._interval_ms = interval_s * 1000

    def run(self, lock: SweepLock, deadline: float) -> WatchReport:
        report = WatchReport()
        if self._interval_ms and not self._signals.take_pass(interval_ms=self._interval_ms):
            return report  # another sweep evaluated within the interval
        started = self._clock.now_ms()
        noted = self._signals.noted_since(self._signals.evaluated_through(), limit=LICENSES_PER_PASS)
        through = started - 1  # everything noted before this pass began, once all of it is done
        for index, (license_id, _) in enumerate(noted):
            if time.monotonic() >= deadline:
                through = noted[index][1] - 1  # stopped early: the next pass begins with this one
                break
            lock.check()
            self._evaluate(license_id, report)
        else:
            if len(noted) == LICENSES_PER_PASS:
                through = noted[-1][1] - 1  # more are waiting: the next pass goes on from here
        self._signals.set_evaluated_through(through, now_ms=started)
        return report

    def _evaluate(self, license_id: str, report: WatchReport) -> None:
        entry = self._licenses.by_id(license_id)
        if entry is None or entry.license.revoked_ms is not None:
            return
        lic, now = entry.license, self._clock.now_ms()
        keep_ms = lic.anomaly_rules.longest_window_ms
        if not keep_ms:
            return  # every rule is off
        report.evaluated += 1
        for finding in evaluate(lic.anomaly_rules, self._signals.signals(lic.id, now_ms=now, keep_ms=keep_ms), now):
            raised = self._store.raise_finding(finding, tenant_id=lic.tenant_id, license_id=lic.id, now_ms=now)
            if raised.change != "unchanged":
                report.firestore_writes += 1 + (raised.event_id is not None)
            report.raised += raised.event_id is not None
