"""Tenant administration: licenses, live holders, force-release, audit log.

Roles (the README's "Roles" section says the same for users):
    owner    the platform operator: the vendor. Sells and sets entitlements: creates
             tenants and licenses, changes what a license grants (ENTITLEMENTS),
             revokes, and may act in every tenant.
    admin    the administrator of one customer organisation (its `tenant` claim).
             Reads everything of its tenant, force-releases sessions, suspends and
             resumes its licenses (not one the vendor suspended), and sets the
             restrictions that only narrow use (TENANT_SETTINGS), its seat policy
             included, but for the policy's overdraft, which is an entitlement
             (POLICY_ENTITLEMENTS). Changing an entitlement, creating or revoking a
             license is 403, naming what it tried.
    (none)   an end user: 403 on every admin route.
Checked in this order: role (403), then visibility (another tenant's object is 404,
exactly as if it did not exist), then the field-level rule (403). An admin claim
without a valid tenant administers nothing (see shared.auth.principal).
Every change is one audit event with the actor, the time and, for updates, before/after.
A change to a license bumps its generation in Redis, so every instance's cached copy is
refused by the next seat script and the change holds at once.

Machine keys (shared/domain/machine_keys.py) are the tenant's: its admin (or the owner)
makes one for licenses of the tenant (the key is in that answer only), lists them (never
the key) and revokes one. The CI pool they hold seats of (`ci_seats`) and a license's
support line (`support_contact`) are the vendor's, entitlements like max_seats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from shared.clock import Clock
from shared.domain import AuditEvent, EndReason, License, LicenseBounds, MachineKey, Principal, SeatPolicy, SessionEnd
from shared.domain.leases import ReleaseOutcome
from shared.domain.machine_keys import REVOCATION_BOUND_S, machine_key_hash, machine_uid, new_machine_key
from shared.domain.times import parse_rfc3339, rfc3339
from shared.errors import Forbidden, InvalidRequest, NotFound, SessionNotFound
from shared.ids import (
    MACHINE_KEY_ID,
    IdGenerator,
    license_id_of_session,
    license_id_of_ticket,
    new_machine_key_id,
)
from shared.licensing.access import require_admin, require_owner, tenant_scope, visible_license
from shared.licensing.admin_requests import (
    CreateLicenseRequest,
    CreateMachineKeyRequest,
    CreateTenantRequest,
    EventsQuery,
    KeysQuery,
    LicensesQuery,
    TenantsQuery,
    UpdateLicenseRequest,
    policy_of,
)
from shared.licensing.ports import DurableRecord, SeatLedger, UsageRecord
from shared.licensing.provisioning import LicenseSpec, Provisioning, normalise_domains
from shared.licensing.rebuild import SeatRebuilder
from shared.licensing.settlement import settle

# What the customer bought: only the owner (the vendor) changes these.
ENTITLEMENTS = ("max_seats", "tier", "features", "expires_at", "lease_ttl_s", "heartbeat_interval_s",
                "offline_grace_s", "max_borrow_s", "ci_seats", "support_contact")
# What a tenant's admin may set on its own licenses: suspension and restrictions that
# only narrow who may use a seat, and how; the seat policy (who, and which seats) too,
# but for its overdraft: seats beyond max_seats are bought, as max_seats is.
TENANT_SETTINGS = ("suspended", "allowed_domains", "max_sessions_per_user", "revive_window_s", "policy",
                   "anomaly_rules")
POLICY_ENTITLEMENTS = ("overdraft_seats", "overdraft_ratio")


def _time(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise InvalidRequest(f"{field}: {exc}", field=field) from None


class Administration:
    def __init__(self, *, store: DurableRecord, usage: UsageRecord, seats: SeatLedger, provisioning: Provisioning,
                 clock: Clock, ids: IdGenerator):
        self._store = store
        self._seats = seats
        self._rebuilder = SeatRebuilder(seats=seats, store=store, usage=usage, clock=clock)
        self._provisioning = provisioning
        self._clock = clock
        self._ids = ids

    # -- audit events ---------------------------------------------------------------------
    def _event(self, caller: Principal, lic: License, kind: str, **details: Any) -> AuditEvent:
        return AuditEvent(self._ids.event_id(), lic.tenant_id, lic.id, kind, caller.uid, self._clock.now_ms(),
                          details=details)

    # -- tenants ---------------------------------------------------------------------------
    def create_tenant(self, caller: Principal, request: CreateTenantRequest) -> dict[str, Any]:
        require_owner(caller, "manages tenants")
        tenant = self._provisioning.create_tenant(request.name, tenant_id=request.id, actor=caller.uid)
        return {"id": tenant.id, "name": tenant.name, "created_at": rfc3339(tenant.created_ms)}

    def list_tenants(self, caller: Principal, query: TenantsQuery) -> dict[str, Any]:
        require_owner(caller, "manages tenants")
        tenants = self._store.list_tenants(after=query.after or "", limit=query.limit)
        return {"tenants": [{"id": t.id, "name": t.name, "created_at": rfc3339(t.created_ms)} for t in tenants],
                "next_after": tenants[-1].id if tenants else None}

    # -- licenses ---------------------------------------------------------------------------
    def create_license(self, caller: Principal, request: CreateLicenseRequest) -> dict[str, Any]:
        require_admin(caller)
        require_owner(caller, "creates licenses (a license is an entitlement the customer buys)")
        if not request.tenant:
            raise InvalidRequest("name the license's tenant", field="tenant")
        tenant_id = request.tenant
        issued = self._provisioning.create_license(LicenseSpec(
            tenant_id=tenant_id, max_seats=request.max_seats, tier=request.tier, features=tuple(request.features),
            expires_ms=_time(request.expires_at, "expires_at"), lease_ttl_s=request.lease_ttl_s,
            heartbeat_interval_s=request.heartbeat_interval_s, allowed_domains=tuple(request.allowed_domains),
            revive_window_s=request.revive_window_s, max_sessions_per_user=request.max_sessions_per_user,
            offline_grace_s=request.offline_grace_s, max_borrow_s=request.max_borrow_s,
            policy=policy_of(request.policy), ci_seats=request.ci_seats, support_contact=request.support_contact,
        ), actor=caller.uid)
        return {"license": issued.license.admin_view(), "license_key": issued.license_key}

    def _tenant_page(self, caller: Principal, query: LicensesQuery | KeysQuery, name: str,
                     read: Callable[..., Sequence[License | MachineKey]]) -> dict[str, Any]:
        """One page of a tenant's list (the owner's: any tenant's, or all): {name: [admin
        views], next_after}. Another tenant's asked for by an admin: nothing, not an error."""
        require_admin(caller)
        scope = tenant_scope(caller, query.tenant)
        if query.tenant and scope != query.tenant:
            return {name: [], "next_after": None}
        items = read(tenant_id=scope, after=query.after or "", limit=query.limit)
        # A short page is the last: no cursor to a page that would be empty.
        return {name: [item.admin_view() for item in items],
                "next_after": items[-1].id if len(items) == query.limit else None}

    def list_licenses(self, caller: Principal, query: LicensesQuery) -> dict[str, Any]:
        """A page of licenses, each with its seats in use now (one Redis round trip for the page)."""
        page = self._tenant_page(caller, query, "licenses", self._store.list_licenses)
        ids = [view["id"] for view in page["licenses"]]
        for view, (used, in_pool) in zip(page["licenses"], self._seats.seat_use_many(ids, now_ms=self._clock.now_ms()),
                                         strict=True):
            view["seats"] = {"used": used, "max": view["max_seats"]}
            if view["ci_seats"] or in_pool:
                view["ci_pool"] = {"used": in_pool, "max": view["ci_seats"]}  # (ci_seats: the pool size)
        return page

    def get_license(self, caller: Principal, license_id: str) -> dict[str, Any]:
        lic = visible_license(self._store, caller, license_id)
        return {"license": lic.admin_view(), **self._seats_in_use(lic)}

    def _seats_in_use(self, lic: License) -> dict[str, Any]:
        """`seats` (of max_seats) in use now, and `ci_seats` (of the CI pool) if it has one or
        pool leases still live."""
        used, in_pool = self._seats.seat_use(lic.id, now_ms=self._clock.now_ms())
        answer: dict[str, Any] = {"seats": {"used": used, "max": lic.max_seats}}
        if lic.ci_seats or in_pool:
            answer["ci_seats"] = {"used": in_pool, "max": lic.ci_seats}
        return answer

    def update_license(self, caller: Principal, license_id: str, request: UpdateLicenseRequest) -> dict[str, Any]:
        if visible_license(self._store, caller, license_id).revoked_ms is not None:
            raise InvalidRequest("a revoked license cannot change")  # final: the transaction would say the same
        asked: dict[str, Any] = {}
        for field in sorted(request.model_fields_set):
            value = getattr(request, field)
            if field == "expires_at":
                asked["expires_ms"] = _time(value, "expires_at")
            elif field == "allowed_domains":
                asked["allowed_domains"] = normalise_domains(value or [])
            elif field == "features":
                asked["features"] = tuple(value or ())
            elif field == "policy":
                asked["policy"] = policy_of(value)  # null or {}: the default policy
            elif field == "support_contact":
                asked["support_contact"] = value  # null: none
            elif field == "anomaly_rules":
                if value is None:
                    raise InvalidRequest("anomaly_rules cannot be null; set a rule's max to 0 to switch it off",
                                         field=field)
                asked["anomaly_rules"] = value.changes()  # merged onto the license's rules below
            elif value is None:
                raise InvalidRequest(f"{field} cannot be null", field=field)
            else:
                asked[field] = value
        if not asked:
            raise InvalidRequest("nothing to change: send one or more of "
                                 + ", ".join(UpdateLicenseRequest.model_fields))

        def change(lic: License) -> tuple[License, AuditEvent]:
            # Run by the store in a transaction, on the license as stored now: two
            # administrators changing one license at once both get their change (the
            # later one is checked and applied on top of the earlier), never a lost one.
            if lic.revoked_ms is not None:
                raise InvalidRequest("a revoked license cannot change")
            wanted = dict(asked)
            if "anomaly_rules" in wanted:
                wanted["anomaly_rules"] = lic.anomaly_rules.with_changes(wanted["anomaly_rules"])
            changes = {k: v for k, v in wanted.items() if v != getattr(lic, k)}  # resending a value changes nothing
            self._check_may_change(caller, lic, changes)
            if "suspended" in changes:
                changes["suspended_by"] = caller.role if changes["suspended"] else None
            timing = {name: changes.get(name, getattr(lic, name)) for name in ("lease_ttl_s", "heartbeat_interval_s")}
            problems = LicenseBounds.problems(**timing)
            if problems:
                raise InvalidRequest("; ".join(problems), field="heartbeat_interval_s")
            if "policy" in changes or "max_seats" in changes:
                self._check_policy(changes.get("policy", lic.policy), changes.get("max_seats", lic.max_seats),
                                   changed="policy" in changes)
            updated = replace(lic, **changes, updated_ms=self._clock.now_ms())
            before, after = lic.admin_view(), updated.admin_view()
            diff = {k: {"before": before[k], "after": after[k]}
                    for k in after if before[k] != after[k] and k != "updated_at"}
            return updated, self._event(caller, updated, "license.update", changes=diff)

        updated = self._store.update_license(license_id, change)
        self._seats.bump_generation(updated.id)
        answer: dict[str, Any] = {"license": updated.admin_view(), **self._seats_in_use(updated)}
        used = answer["seats"]["used"]
        if used > updated.max_seats:
            answer["notice"] = (
                f"{used} sessions are live but the license now has {updated.max_seats} seats: nobody is evicted; "
                f"no new seat is granted until fewer than {updated.max_seats} are in use (free one with "
                "DELETE .../sessions/{session_id})."
            )
        return answer

    @staticmethod
    def _check_may_change(caller: Principal, lic: License, changes: dict[str, Any]) -> None:
        """A tenant admin changes only TENANT_SETTINGS (of the policy, all but its overdraft),
        and never resumes a vendor's suspension."""
        if caller.is_owner:
            return
        entitlements = sorted({"expires_at" if k == "expires_ms" else k for k in changes} - set(TENANT_SETTINGS))
        if "policy" in changes:  # the policy replaces the whole: its overdraft must come back as it was
            entitlements += [f"policy.{name}" for name in POLICY_ENTITLEMENTS
                             if getattr(changes["policy"], name) != getattr(lic.policy, name)]
        if entitlements:
            message = f"only the platform owner (the vendor) changes entitlements: {', '.join(entitlements)}"
            if any(name.startswith("policy.") for name in entitlements):
                kept = [f"{k} {v}" for k, v in lic.policy.as_json().items() if k in POLICY_ENTITLEMENTS]
                message += ("; the overdraft is bought, as seats are: send the policy with the overdraft it has ("
                            + (", ".join(kept) or "none") + ")")
            raise Forbidden(message, denied_fields=entitlements)
        if changes.get("suspended") is False and lic.suspended_by == "owner":
            raise Forbidden("the vendor suspended this license; only the platform owner resumes it",
                            denied_fields=["suspended"])

    @staticmethod
    def _check_policy(policy: SeatPolicy, max_seats: int, *, changed: bool) -> None:
        """The policy as it will be must fit the license as it will be (a lower max_seats too)."""
        problems = policy.problems(max_seats)
        if not problems:
            return
        if changed:
            raise InvalidRequest("policy: " + "; ".join(problems), field="policy")
        raise InvalidRequest(f"max_seats {max_seats} does not fit the license's seat policy: " + "; ".join(problems)
                             + " (change the policy first, or in the same request)", field="max_seats")

    def revoke_license(self, caller: Principal, license_id: str) -> dict[str, Any]:
        """Revoke: the key stops working and no token is ever signed for the license again.

        Repeatable: a second revoke ends whatever is still live (e.g. a session a failed
        first attempt left), answering `already_revoked`."""
        lic = visible_license(self._store, caller, license_id)
        require_owner(caller, "revokes licenses")
        now = self._clock.now_ms()
        status = "already_revoked" if lic.revoked_ms is not None else "revoked"
        if status == "revoked":
            # Durable first (the key stops working), then the generation (every cache sees
            # it), then every live session ends (their next heartbeat is 410).
            revoked = replace(lic, revoked_ms=now, updated_ms=now)
            if self._store.revoke_license(revoked, self._event(caller, revoked, "license.revoke")):
                lic = revoked
            else:  # a concurrent revoke came first: this one ends what is still live
                status = "already_revoked"
                lic = self._store.get_license(lic.id) or revoked
        self._seats.bump_generation(lic.id)
        ended = []

        def revoke_session(session_id: str) -> ReleaseOutcome:
            return self._rebuilder.on_trusted_table(lic, lambda: self._seats.release(
                lic.id, session_id, now_ms=now, caller_uid=caller.uid, may_act_for_others=True,
                end=EndReason.REVOKED, **self._hold_terms(lic)))

        for lease in self._seats.live_sessions(lic.id, now_ms=now, limit=1_000_000):
            if lease.state != "live":
                continue
            outcome = revoke_session(lease.session_id)
            if outcome.kind == "ENDED" and outcome.end is not None:
                ended.append(outcome.end)
        settle(self._store, self._seats, lic, ended, actor=caller.uid)
        return {"status": status, "sessions_ended": len(ended), "license": lic.admin_view()}

    @staticmethod
    def _hold_terms(lic: License) -> dict[str, Any]:
        """How long an admin-ended borrow keeps its seat: what its token allows offline."""
        return {"offline_grace_ms": lic.offline_grace_s * 1000, "license_end_ms": lic.expires_ms}

    # -- live holders ------------------------------------------------------------------------
    def list_sessions(self, caller: Principal, license_id: str) -> dict[str, Any]:
        lic = visible_license(self._store, caller, license_id)
        now = self._clock.now_ms()
        leases = self._seats.live_sessions(lic.id, now_ms=now, limit=10_000)

        def state(lease) -> str:
            if lease.state == "held":
                return "held"  # ended by an admin, still counted: its borrow token is valid offline
            return "borrowed" if lease.borrowed_until_ms is not None and lease.borrowed_until_ms > now else "live"

        in_pool = sum(lease.ci for lease in leases)
        answer: dict[str, Any] = {"sessions": [
            {"session_id": lease.session_id, "uid": lease.uid, "email": lease.shown.get("email"),
             "hardware_id": lease.hardware_id,
             "client": {"hostname": lease.shown.get("hostname"), "version": lease.shown.get("version")},
             "state": state(lease), "since": rfc3339(lease.acquired_ms),
             "last_heartbeat_at": rfc3339(lease.last_heartbeat_ms), "expires_at": rfc3339(lease.expires_ms),
             "borrowed_until": rfc3339(lease.borrowed_until_ms) if state(lease) != "live" else None,
             "overage": lease.overage, "ci": lease.ci}
            for lease in sorted(leases, key=lambda lease: lease.acquired_ms)
        ], "seats": {"used": len(leases) - in_pool, "max": lic.max_seats}}
        if lic.ci_seats or in_pool:
            answer["ci_seats"] = {"used": in_pool, "max": lic.ci_seats}
        return answer

    def force_release(self, caller: Principal, license_id: str, session_id: str) -> dict[str, Any]:
        lic = visible_license(self._store, caller, license_id)
        if license_id_of_session(session_id) != lic.id:
            raise SessionNotFound(f"license {lic.id} has no session {session_id}")
        outcome = self._rebuilder.on_trusted_table(lic, lambda: self._seats.release(
            lic.id, session_id, now_ms=self._clock.now_ms(), caller_uid=caller.uid, may_act_for_others=True,
            end=EndReason.FORCED, **self._hold_terms(lic)))
        end = outcome.end
        if end is None:  # UNKNOWN to Redis (FORBIDDEN cannot be: an administrator acts for others)
            record = self._store.get_session(session_id)
            if record is None or record.license_id != lic.id:
                raise SessionNotFound(f"license {lic.id} has no session {session_id}")
            return {"status": "already_released"}
        settle(self._store, self._seats, lic, [end], actor=caller.uid)
        if not (outcome.kind == "ENDED" and end.state == EndReason.FORCED):
            return {"status": "already_released"}
        answer: dict[str, Any] = {"status": "released", "session_id": session_id, "uid": end.uid,
                                  "hardware_id": end.hardware_id, "seat_counted_until": None}
        if end.held_until_ms:
            answer["seat_counted_until"] = rfc3339(end.held_until_ms)
            answer["notice"] = (f"the session ended; its seat stays counted until {rfc3339(end.held_until_ms)} "
                                "because it was borrowed: the borrower's token stays valid offline until then")
        return answer

    # -- the wait queue -----------------------------------------------------------------------
    def list_queue(self, caller: Principal, license_id: str) -> dict[str, Any]:
        """The license's wait queue in order: who waits, since when, and whose seat is held."""
        lic = visible_license(self._store, caller, license_id)
        now = self._clock.now_ms()
        # A lapsed ticket stays in Redis until a script next serves the queue: not shown.
        waiting = [t for t in self._seats.queue(lic.id)
                   if t.alive_until_ms > now and (t.held_until_ms is None or t.held_until_ms > now)]
        return {
            "license": lic.id,
            "queue": lic.policy.queue.as_json() if lic.policy.queue is not None else None,
            "tickets": [
                {"ticket": t.ticket, "position": position, "uid": t.uid, "hardware_id": t.hardware_id,
                 "groups": list(t.groups), "since": rfc3339(t.queued_ms), "alive_until": rfc3339(t.alive_until_ms),
                 "held_until": rfc3339(t.held_until_ms)}
                for position, t in enumerate(waiting, start=1)
            ],
        }

    def remove_ticket(self, caller: Principal, license_id: str, ticket: str) -> dict[str, Any]:
        """Take a ticket out of the queue (a seat held for it passes on); its holder's next
        poll is 410 TICKET_GONE. A ticket no longer queued: `not_queued`, nothing recorded."""
        lic = visible_license(self._store, caller, license_id)
        if license_id_of_ticket(ticket) != lic.id:
            raise NotFound(f"license {lic.id} has no ticket {ticket}")
        removed = self._seats.remove_ticket(lic.id, ticket)
        if removed is None:
            return {"status": "not_queued", "ticket": ticket}
        self._store.record_event(self._event(caller, lic, "queue.remove", ticket=ticket, uid=removed.uid,
                                             hardware_id=removed.hardware_id,
                                             held_seat=removed.held_until_ms is not None))
        return {"status": "removed", "ticket": ticket, "uid": removed.uid, "hardware_id": removed.hardware_id}

    # -- machine keys ---------------------------------------------------------------------------
    def create_machine_key(self, caller: Principal, request: CreateMachineKeyRequest) -> dict[str, Any]:
        """A machine key for licenses of one tenant; the key is in this answer only."""
        require_admin(caller)
        wanted = list(dict.fromkeys(request.licenses))
        licenses = [visible_license(self._store, caller, license_id) for license_id in wanted]
        tenants = sorted({lic.tenant_id for lic in licenses})
        if len(tenants) != 1:
            raise InvalidRequest("a machine key belongs to one tenant: list licenses of one tenant only",
                                 field="licenses")
        revoked = [lic.id for lic in licenses if lic.revoked_ms is not None]
        if revoked:
            raise InvalidRequest(f"license {revoked[0]} is revoked: a key for it would open nothing", field="licenses")
        key_id, now = new_machine_key_id(), self._clock.now_ms()
        secret = new_machine_key(key_id)
        key = MachineKey(id=key_id, tenant_id=tenants[0], name=request.name, licenses=tuple(wanted),
                         mode=request.mode, key_hash=machine_key_hash(secret), created_by=caller.uid, created_ms=now)
        self._store.create_machine_key(key, AuditEvent(
            self._ids.event_id(), key.tenant_id, None, "key.create", caller.uid, now,
            details={"key_id": key.id, "key_name": key.name, "licenses": wanted, "mode": key.mode}))
        return {"key": key.admin_view(), "api_key": secret}

    def list_machine_keys(self, caller: Principal, query: KeysQuery) -> dict[str, Any]:
        return self._tenant_page(caller, query, "keys", self._store.list_machine_keys)

    def revoke_machine_key(self, caller: Principal, key_id: str) -> dict[str, Any]:
        """Revoke a key for good: refused by every instance within REVOCATION_BOUND_S, and its
        live seats end now (a borrowed one stays counted until its token lapses, as a
        force-release leaves it). Repeatable: `already_revoked`, and what is still live ends."""
        require_admin(caller)
        key = self._store.get_machine_key(key_id) if MACHINE_KEY_ID.fullmatch(key_id) else None
        if key is None or not caller.administers(key.tenant_id):
            raise NotFound(f"no machine key {key_id}")
        now = self._clock.now_ms()
        revoked = self._store.revoke_machine_key(key.id, now, AuditEvent(
            self._ids.event_id(), key.tenant_id, None, "key.revoke", caller.uid, now,
            details={"key_id": key.id, "key_name": key.name}))
        key = replace(key, revoked_ms=now) if revoked else (self._store.get_machine_key(key.id) or key)
        ended = self._end_sessions_of(caller, key, now)
        return {"status": "revoked" if revoked else "already_revoked", "key": key.admin_view(), "sessions_ended": ended,
                "notice": f"the key is refused everywhere within {REVOCATION_BOUND_S} s; its seats were freed now"}

    def _end_sessions_of(self, caller: Principal, key: MachineKey, now: int) -> int:
        """Force-release the live sessions a machine key holds, on each of its licenses."""
        ended = 0
        for license_id in key.licenses:
            lic = self._store.get_license(license_id)
            if lic is not None and lic.revoked_ms is None:
                ended += self._force_release_all(caller, lic, machine_uid(key.id), now)
        return ended

    def _force_release_all(self, caller: Principal, lic: License, uid: str, now: int) -> int:
        def release(session_id: str) -> ReleaseOutcome:
            return self._rebuilder.on_trusted_table(lic, lambda: self._seats.release(
                lic.id, session_id, now_ms=now, caller_uid=caller.uid, may_act_for_others=True,
                end=EndReason.FORCED, **self._hold_terms(lic)))

        ends: list[SessionEnd] = []
        for lease in self._seats.live_sessions(lic.id, now_ms=now, limit=1_000_000):
            if lease.state == "live" and lease.uid == uid:
                outcome = release(lease.session_id)
                if outcome.kind == "ENDED" and outcome.end is not None:
                    ends.append(outcome.end)
        settle(self._store, self._seats, lic, ends, actor=caller.uid)
        return len(ends)

    # -- audit log ----------------------------------------------------------------------------
    def list_events(self, caller: Principal, query: EventsQuery) -> dict[str, Any]:
        require_admin(caller)
        if query.license:
            tenant_id: str | None = visible_license(self._store, caller, query.license).tenant_id
        else:
            tenant_id = tenant_scope(caller, query.tenant)
            if query.tenant and tenant_id != query.tenant:
                return {"events": [], "next_after": None}
        since, until = _time(query.from_, "from"), _time(query.to, "to")
        if tenant_id is None:
            if query.type or query.actor:
                raise InvalidRequest("name a tenant (or a license) to filter by type or actor")
            events = self._store.list_all_events(since_ms=since, until_ms=until, after=query.after,
                                                 limit=query.limit)
        else:
            events = self._store.list_events(tenant_id=tenant_id, license_id=query.license, kind=query.type,
                                             actor=query.actor, since_ms=since, until_ms=until, after=query.after,
                                             limit=query.limit)
        return {"events": [
            {"id": e.id, "type": e.type, "actor": e.actor, "at": rfc3339(e.at_ms), "tenant": e.tenant_id,
             "license": e.license_id, "session": e.session_id, "details": e.details}
            for e in events
        ], "next_after": events[-1].id if len(events) == query.limit else None}
        events = self._store.list_events(tenant_id=tenant_id, license_id=query.license, limit=query.limit)
        return {"events": [
            {"id": e.id, "type": e.type, "actor": e.actor, "at": rfc3339(e.at_ms), "tenant": e.tenant_id,
             "license": e.license_id, "session": e.session_id, "details": e.details}
            for e in events
        ]}
