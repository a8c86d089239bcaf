"""The daily expiry scan: warn administrators of licenses about to expire, and of expiries.

Cloud Scheduler calls it once a day (POST /sweep/expiry; terraform/modules/functions). It
reads the licenses whose expiry lies between two days ago and 30 days ahead (a query over
one field: its cost follows the licenses near their end, not all of them) and records,
once each, `license.expiring` 30, 7 and 1 days before and `license.expired` after
(shared/domain/notifications.py expiry_notices); the sweep publishes them. A license
that expired before the window (or before this scan existed) is not announced late.
Revoked licenses are not warned about.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.clock import Clock
from shared.domain.notifications import EXPIRY_WARNING_DAYS, expiry_notices
from shared.domain.times import DAY_MS
from shared.licensing.ports import DurableRecord

LOOK_BACK_DAYS = 2
"""An expiry this recent is still announced (a day's scan missed is made up)."""


@dataclass
class ExpiryReport:
    scanned: int = 0
    expiring: int = 0
    expired: int = 0

    def as_json(self) -> dict[str, int]:
        return {"scanned": self.scanned, "expiring": self.expiring, "expired": self.expired}


class ExpiryScan:
    def __init__(self, *, store: DurableRecord, clock: Clock):
        self._store = store
        self._clock = clock

    def run(self) -> ExpiryReport:
        now = self._clock.now_ms()
        report = ExpiryReport()
        licenses = self._store.licenses_expiring(since_ms=now - LOOK_BACK_DAYS * DAY_MS,
                                                 until_ms=now + max(EXPIRY_WARNING_DAYS) * DAY_MS)
        for lic in licenses:
            if lic.revoked_ms is not None:
                continue
            report.scanned += 1
            for notice in expiry_notices(lic.id, lic.tenant_id, lic.expires_ms, now):
                if self._store.record_notice(notice):
                    if notice.type == "license.expired":
                        report.expired += 1
                    else:
                        report.expiring += 1
        return report
