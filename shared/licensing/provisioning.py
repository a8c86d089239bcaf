"""Creating tenants and licenses (the operator CLI now; the admin function later).

A license key is generated here, returned once, and only its hash is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shared.clock import Clock
from shared.domain import AuditEvent, License, LicenseBounds, SeatPolicy, Tenant
from shared.errors import InvalidRequest, NotFound
from shared.ids import TENANT_ID, IdGenerator
from shared.licensing.license_keys import key_hash, new_license_key
from shared.licensing.ports import DurableRecord

DOMAIN_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
"""A domain name in lower case (allowed_domains, a seat-policy group's domains)."""


@dataclass(frozen=True)
class LicenseSpec:
    tenant_id: str
    max_seats: int
    tier: str = "standard"
    features: tuple[str, ...] = ()
    expires_ms: int | None = None
    lease_ttl_s: int | None = None
    heartbeat_interval_s: int | None = None
    allowed_domains: tuple[str, ...] = ()
    suspended: bool = False
    revive_window_s: int = 0
    max_sessions_per_user: int = 0
    offline_grace_s: int = 0
    max_borrow_s: int = 0
    policy: SeatPolicy = field(default_factory=SeatPolicy)
    ci_seats: int = 0
    support_contact: str | None = None


@dataclass(frozen=True)
class IssuedLicense:
    license: License
    license_key: str  # shown once, never stored


def normalise_domains(domains, *, field: str = "allowed_domains", what: str | None = None) -> tuple[str, ...]:
    """Lower-case, de-duplicated, sorted; InvalidRequest (naming `field`, its message `what`
    the domains are) for anything not a domain name."""
    normalised = tuple(sorted({d.strip().lower() for d in domains}))
    bad = [d for d in normalised if not DOMAIN_NAME.match(d)]
    if bad:
        raise InvalidRequest(f"{what or field} must be domain names like example.com, not {bad[0]!r}", field=field)
    return normalised


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].strip("-")
    return slug if len(slug) >= 3 else f"tenant-{slug}".strip("-")


class Provisioning:
    def __init__(self, *, store: DurableRecord, clock: Clock, ids: IdGenerator,
                 default_lease_ttl_s: int, default_heartbeat_interval_s: int):
        self._store = store
        self._clock = clock
        self._ids = ids
        self._default_ttl_s = default_lease_ttl_s
        self._default_interval_s = default_heartbeat_interval_s

    def create_tenant(self, name: str, *, tenant_id: str | None = None, actor: str) -> Tenant:
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidRequest("a tenant name of 1 to 200 characters is required")
        tenant_id = tenant_id or _slug(name)
        if not TENANT_ID.fullmatch(tenant_id):
            raise InvalidRequest("tenant id must be 3-63 lowercase letters, digits or hyphens", field="id")
        now = self._clock.now_ms()
        tenant = Tenant(tenant_id, name, now)
        event = AuditEvent(self._ids.event_id(), tenant_id, None, "tenant.create", actor, now, details={"name": name})
        self._store.create_tenant(tenant, event)
        return tenant

    def create_license(self, spec: LicenseSpec, *, actor: str) -> IssuedLicense:
        if self._store.get_tenant(spec.tenant_id) is None:
            raise NotFound(f"no tenant {spec.tenant_id}")
        ttl_s = spec.lease_ttl_s or self._default_ttl_s
        interval_s = spec.heartbeat_interval_s or min(self._default_interval_s, max(1, ttl_s * 5 // 6))
        problems = LicenseBounds.problems(
            max_seats=spec.max_seats, lease_ttl_s=ttl_s, heartbeat_interval_s=interval_s,
            offline_grace_s=spec.offline_grace_s, max_borrow_s=spec.max_borrow_s,
            max_sessions_per_user=spec.max_sessions_per_user, revive_window_s=spec.revive_window_s,
            ci_seats=spec.ci_seats,
        )
        support_problem = LicenseBounds.support_contact_problem(spec.support_contact)
        if support_problem:
            problems.append(support_problem)
        domains = normalise_domains(spec.allowed_domains)
        if problems:
            raise InvalidRequest("; ".join(problems))
        policy_problems = spec.policy.problems(spec.max_seats)
        if policy_problems:
            raise InvalidRequest("policy: " + "; ".join(policy_problems), field="policy")
        now = self._clock.now_ms()
        key = new_license_key()
        license = License(
            id=self._ids.license_id(), tenant_id=spec.tenant_id, max_seats=spec.max_seats, tier=spec.tier,
            features=tuple(spec.features), expires_ms=spec.expires_ms, suspended=spec.suspended,
            suspended_by="owner" if spec.suspended else None,
            allowed_domains=domains, lease_ttl_s=ttl_s, heartbeat_interval_s=interval_s,
            revive_window_s=spec.revive_window_s, max_sessions_per_user=spec.max_sessions_per_user,
            offline_grace_s=spec.offline_grace_s, max_borrow_s=spec.max_borrow_s,
            key_hash=key_hash(key), created_ms=now, updated_ms=now, policy=spec.policy,
            ci_seats=spec.ci_seats, support_contact=spec.support_contact,
        )
        after = {**license.public_view(), "max_seats": spec.max_seats, "lease_ttl_s": ttl_s}
        after.update({k: v for k, v in (("ci_seats", spec.ci_seats), ("support_contact", spec.support_contact)) if v})
        if not spec.policy.is_default:
            after["policy"] = spec.policy.as_json()
        event = AuditEvent(self._ids.event_id(), spec.tenant_id, license.id, "license.create", actor, now,
                           details={"after": after})
        self._store.create_license(license, event)
        return IssuedLicense(license, key)
