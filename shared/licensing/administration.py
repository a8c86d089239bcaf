"""Tenant administration: licenses, live holders, force-release, audit log.

Who may do what, checked first and in this order:
    no role (an end user)        403 on every admin route
    admin of tenant T            T's licenses only; anything else is 404, exactly as if it
                                 did not exist (a wrong-tenant lookup reveals nothing)
    owner (platform operator)    everything, and tenants
Every change is one audit event with the actor, the time and, for updates, before/after.
A change to a license bumps its generation in Redis, so every instance's cached copy is
refused by the next seat script and the change holds at once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shared.auth import Principal
from shared.clock import Clock, parse_rfc3339, rfc3339
from shared.errors import Forbidden, InvalidRequest, NotFound, SessionNotFound
from shared.ids import IdGenerator, license_id_of_session
from shared.licensing.admin_requests import CreateLicenseRequest, CreateTenantRequest, UpdateLicenseRequest
from shared.licensing.provisioning import LicenseSpec, Provisioning, normalise_domains
from shared.licensing.settlement import settle
from shared.seats import SeatTable
from shared.store import AuditEvent, FirestoreStore, License

_MAX_PAGE = 500


def _page_limit(raw: str | None, default: int = 100) -> int:
    try:
        limit = int(raw) if raw is not None else default
    except ValueError:
        raise InvalidRequest("limit must be a whole number", field="limit") from None
    if not 1 <= limit <= _MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {_MAX_PAGE}", field="limit")
    return limit


def _time(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise InvalidRequest(f"{field}: {exc}", field=field) from None


class Administration:
    def __init__(self, *, store: FirestoreStore, seats: SeatTable, provisioning: Provisioning, clock: Clock,
                 ids: IdGenerator):
        self._store = store
        self._seats = seats
        self._provisioning = provisioning
        self._clock = clock
        self._ids = ids

    # -- who may -------------------------------------------------------------------------
    @staticmethod
    def _require_admin(caller: Principal) -> None:
        if caller.role not in ("admin", "owner"):
            raise Forbidden("administration needs the admin or owner role")

    @staticmethod
    def _require_owner(caller: Principal) -> None:
        if not caller.is_owner:
            raise Forbidden("only the platform owner manages tenants")

    def _visible_license(self, caller: Principal, license_id: str) -> License:
        self._require_admin(caller)
        lic = self._store.get_license(license_id) if license_id.startswith("lic_") else None
        if lic is None or not caller.administers(lic.tenant_id):
            raise NotFound(f"no license {license_id}")
        return lic

    def _event(self, caller: Principal, lic: License | None, kind: str, tenant_id: str | None = None,
               **details: Any) -> AuditEvent:
        return AuditEvent(self._ids.event_id(), tenant_id or lic.tenant_id, lic.id if lic else None, kind,
                          caller.uid, self._clock.now_ms(), details=details)

    # -- tenants ---------------------------------------------------------------------------
    def create_tenant(self, caller: Principal, request: CreateTenantRequest) -> dict[str, Any]:
        self._require_owner(caller)
        tenant = self._provisioning.create_tenant(request.name, tenant_id=request.id, actor=caller.uid)
        return {"id": tenant.id, "name": tenant.name, "created_at": rfc3339(tenant.created_ms)}

    def list_tenants(self, caller: Principal, *, after: str | None, limit: str | None) -> dict[str, Any]:
        self._require_owner(caller)
        tenants = self._store.list_tenants(after=after or "", limit=_page_limit(limit))
        return {"tenants": [{"id": t.id, "name": t.name, "created_at": rfc3339(t.created_ms)} for t in tenants],
                "next_after": tenants[-1].id if tenants else None}

    # -- licenses ---------------------------------------------------------------------------
    def create_license(self, caller: Principal, request: CreateLicenseRequest) -> dict[str, Any]:
        self._require_admin(caller)
        if caller.is_owner:
            if not request.tenant:
                raise InvalidRequest("the owner must name the license's tenant", field="tenant")
            tenant_id = request.tenant
        else:
            if request.tenant and request.tenant != caller.tenant:
                raise NotFound(f"no tenant {request.tenant}")
            tenant_id = caller.tenant
        issued = self._provisioning.create_license(LicenseSpec(
            tenant_id=tenant_id, max_seats=request.max_seats, tier=request.tier, features=tuple(request.features),
            expires_ms=_time(request.expires_at, "expires_at"), lease_ttl_s=request.lease_ttl_s,
            heartbeat_interval_s=request.heartbeat_interval_s, allowed_domains=tuple(request.allowed_domains),
            revive_window_s=request.revive_window_s, max_sessions_per_user=request.max_sessions_per_user,
            offline_grace_s=request.offline_grace_s, max_borrow_s=request.max_borrow_s,
        ), actor=caller.uid)
        return {"license": issued.license.admin_view(), "license_key": issued.license_key}

    def list_licenses(self, caller: Principal, *, tenant: str | None, after: str | None,
                      limit: str | None) -> dict[str, Any]:
        self._require_admin(caller)
        if not caller.is_owner:
            if tenant and tenant != caller.tenant:
                return {"licenses": [], "next_after": None}  # another tenant's: nothing, not an error
            tenant = caller.tenant
        licenses = self._store.list_licenses(tenant_id=tenant, after=after or "", limit=_page_limit(limit))
        return {"licenses": [lic.admin_view() for lic in licenses],
                "next_after": licenses[-1].id if licenses else None}

    def get_license(self, caller: Principal, license_id: str) -> dict[str, Any]:
        lic = self._visible_license(caller, license_id)
        return {"license": lic.admin_view(), "seats": {"used": self._used(lic), "max": lic.max_seats}}

    def _used(self, lic: License) -> int:
        return self._seats.live_count(lic.id, now_ms=self._clock.now_ms())

    def update_license(self, caller: Principal, license_id: str, request: UpdateLicenseRequest) -> dict[str, Any]:
        lic = self._visible_license(caller, license_id)
        if lic.revoked_ms is not None:
            raise InvalidRequest("a revoked license cannot change")
        changes: dict[str, Any] = {}
        for field in request.model_fields_set:
            value = getattr(request, field)
            if field == "expires_at":
                changes["expires_ms"] = _time(value, "expires_at")
            elif field == "allowed_domains":
                changes["allowed_domains"] = normalise_domains(value or [])
            elif field == "features":
                changes["features"] = tuple(value or ())
            elif value is None:
                raise InvalidRequest(f"{field} cannot be null", field=field)
            else:
                changes[field] = value
        if not changes:
            raise InvalidRequest("nothing to change: send one or more of " + ", ".join(UpdateLicenseRequest.model_fields))
        updated = replace(lic, **changes, updated_ms=self._clock.now_ms())
        before, after = lic.admin_view(), updated.admin_view()
        diff = {k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k] and k != "updated_at"}
        self._store.update_license(updated, self._event(caller, updated, "license.update", changes=diff))
        self._seats.bump_generation(lic.id)
        answer: dict[str, Any] = {"license": updated.admin_view()}
        used = self._used(updated)
        answer["seats"] = {"used": used, "max": updated.max_seats}
        if used > updated.max_seats:
            answer["notice"] = (
                f"{used} sessions are live but the license now has {updated.max_seats} seats: nobody is evicted; "
                f"no new seat is granted until fewer than {updated.max_seats} are in use (free one with "
                "DELETE .../sessions/{session_id})."
            )
        return answer

    def revoke_license(self, caller: Principal, license_id: str) -> dict[str, Any]:
        lic = self._visible_license(caller, license_id)
        if lic.revoked_ms is not None:
            return {"status": "already_revoked", "license": lic.admin_view()}
        now = self._clock.now_ms()
        revoked = replace(lic, revoked_ms=now, updated_ms=now)
        # Durable first (the key stops working), then the generation (every cache sees it),
        # then every live session ends (their next heartbeat is 410).
        self._store.revoke_license(revoked, self._event(caller, revoked, "license.revoke"))
        self._seats.bump_generation(lic.id)
        ended = []
        for lease in self._seats.live_sessions(lic.id, now_ms=now, limit=1_000_000):
            outcome = self._seats.release(lic.id, lease.session_id, now_ms=now, caller_uid=caller.uid,
                                          may_act_for_others=True, end_state="revoked")
            if outcome.end is not None:
                ended.append(outcome.end)
        settle(self._store, self._seats, lic, ended, actor=caller.uid)
        return {"status": "revoked", "sessions_ended": len(ended), "license": revoked.admin_view()}

    # -- live holders ------------------------------------------------------------------------
    def list_sessions(self, caller: Principal, license_id: str) -> dict[str, Any]:
        lic = self._visible_license(caller, license_id)
        leases = self._seats.live_sessions(lic.id, now_ms=self._clock.now_ms(), limit=10_000)
        return {"sessions": [
            {"session_id": lease.session_id, "uid": lease.uid, "hardware_id": lease.hardware_id,
             "since": rfc3339(lease.acquired_ms), "last_heartbeat_at": rfc3339(lease.last_heartbeat_ms),
             "expires_at": rfc3339(lease.expires_ms)}
            for lease in sorted(leases, key=lambda lease: lease.acquired_ms)
        ], "seats": {"used": len(leases), "max": lic.max_seats}}

    def force_release(self, caller: Principal, license_id: str, session_id: str) -> dict[str, Any]:
        lic = self._visible_license(caller, license_id)
        if license_id_of_session(session_id) != lic.id:
            raise SessionNotFound(f"license {lic.id} has no session {session_id}")
        outcome = self._seats.release(lic.id, session_id, now_ms=self._clock.now_ms(), caller_uid=caller.uid,
                                      may_act_for_others=True, end_state="forced")
        if outcome.kind == "UNKNOWN":
            record = self._store.get_session(session_id)
            if record is None or record.license_id != lic.id:
                raise SessionNotFound(f"license {lic.id} has no session {session_id}")
            return {"status": "already_released"}
        end = outcome.end
        settle(self._store, self._seats, lic, [end], actor=caller.uid)
        if outcome.kind == "ENDED" and end.state == "forced":
            return {"status": "released", "session_id": session_id, "uid": end.uid, "hardware_id": end.hardware_id}
        return {"status": "already_released"}

    def usage(self, caller: Principal, license_id: str, *, days: str | None) -> dict[str, Any]:
        """Seats used now, and per UTC day the peak in use and the acquires refused for want of a seat."""
        lic = self._visible_license(caller, license_id)
        try:
            window = int(days) if days is not None else 30
        except ValueError:
            raise InvalidRequest("days must be a whole number", field="days") from None
        if not 1 <= window <= 400:
            raise InvalidRequest("days must be between 1 and 400", field="days")
        today_ms = self._clock.now_ms()
        recent = sorted(rfc3339(today_ms - d * 86_400_000)[:10] for d in range(window))
        counted = self._seats.daily_usage(lic.id)
        return {
            "license": lic.id,
            "seats": {"used": self._used(lic), "max": lic.max_seats},
            "days": [{"date": day, **counted.get(day, {"peak": 0, "denials": 0})} for day in recent],
        }

    # -- audit log ----------------------------------------------------------------------------
    def list_events(self, caller: Principal, *, license_id: str | None, tenant: str | None,
                    limit: str | None) -> dict[str, Any]:
        self._require_admin(caller)
        if license_id:
            lic = self._visible_license(caller, license_id)
            tenant_id = lic.tenant_id
        elif caller.is_owner:
            tenant_id = tenant
        else:
            if tenant and tenant != caller.tenant:
                return {"events": []}
            tenant_id = caller.tenant
        events = self._store.list_events(tenant_id=tenant_id, license_id=license_id, limit=_page_limit(limit))
        return {"events": [
            {"id": e.id, "type": e.type, "actor": e.actor, "at": rfc3339(e.at_ms), "tenant": e.tenant_id,
             "license": e.license_id, "session": e.session_id, "details": e.details}
            for e in events
        ]}
