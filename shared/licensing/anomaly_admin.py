"""Conflict flags for administrators (shared/domain/anomalies.py): list them, acknowledge them.

An admin sees and acknowledges its own tenant's flags only (another tenant's is 404, as
if it did not exist); the owner every tenant's. A flag's evidence holds only its own
license's notes. Acknowledging records who, when and why (audit `anomaly.acknowledge`);
the flag is raised again only if its count grows past what was acknowledged.
"""

from __future__ import annotations

from typing import Any

from shared.clock import Clock
from shared.domain import AuditEvent, Principal
from shared.domain.anomalies import FLAG_ID, Flag, acknowledge
from shared.errors import InvalidRequest, NotFound
from shared.licensing.access import require_admin, tenant_scope, visible_license
from shared.licensing.admin_requests import AcknowledgeAnomalyRequest, AnomaliesQuery
from shared.licensing.ports import DurableRecord


class AnomalyAdmin:
    def __init__(self, *, store: DurableRecord, clock: Clock):
        self._store = store
        self._clock = clock

    def list(self, caller: Principal, query: AnomaliesQuery, *, license_id: str | None = None) -> dict[str, Any]:
        """A page of flags: the tenant's (the owner's choice of tenant, or all), or one license's."""
        license_id = license_id or query.license
        if license_id is not None:
            lic = visible_license(self._store, caller, license_id)
            tenant: str | None = lic.tenant_id
        else:
            tenant = tenant_scope(caller, query.tenant)
            if query.tenant and tenant != query.tenant:
                return {"anomalies": [], "next_after": None}  # another tenant's: nothing, as for a listing
        flags = self._store.list_flags(tenant_id=tenant, license_id=license_id, state=query.state,
                                       after=query.after or "", limit=query.limit)
        return {"anomalies": [flag.admin_view() for flag in flags],
                "next_after": flags[-1].id if len(flags) == query.limit else None}

    def _visible(self, caller: Principal, flag_id: str) -> Flag:
        require_admin(caller)
        flag = self._store.get_flag(flag_id) if FLAG_ID.fullmatch(flag_id) else None
        if flag is None or not caller.administers(flag.tenant_id):
            raise NotFound(f"no flag {flag_id}")
        return flag

    def acknowledge(self, caller: Principal, flag_id: str, request: AcknowledgeAnomalyRequest) -> dict[str, Any]:
        self._visible(caller, flag_id)
        now = self._clock.now_ms()

        def change(flag: Flag) -> tuple[Flag, AuditEvent]:
            if flag.state == "acknowledged":
                raise InvalidRequest("this flag is acknowledged already; it is raised again if its count grows")
            done = acknowledge(flag, by=caller.uid, note=request.note, now_ms=now)
            return done, AuditEvent(f"{flag.id}.ack.{flag.times_raised}", flag.tenant_id, flag.license_id,
                                    "anomaly.acknowledge", caller.uid, now,
                                    details={"flag": flag.id, "rule": flag.rule, "subject": flag.subject,
                                             "count": flag.observed, "note": request.note})

        return {"anomaly": self._store.update_flag(flag_id, change).admin_view()}
