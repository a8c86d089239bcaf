"""Licenses and tenants, and the bounds every license setting is held to.

The bounds are defined here once: the request models (shared/licensing/*requests.py),
provisioning and the lease-token signer all read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.domain.anomalies import AnomalyRules
from shared.domain.policies import SeatPolicy
from shared.domain.times import rfc3339


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.low <= value <= self.high


class LicenseBounds:
    """What each numeric license setting may be."""

    MAX_SEATS = IntRange(1, 1_000_000)
    LEASE_TTL_S = IntRange(10, 86_400)
    HEARTBEAT_INTERVAL_S = IntRange(1, 86_400)
    REVIVE_WINDOW_S = IntRange(0, 86_400)
    MAX_SESSIONS_PER_USER = IntRange(0, 10_000)
    """0: no limit."""
    OFFLINE_GRACE_S = IntRange(0, 30 * 86_400)
    """The longest offline grace a license may give its lease tokens (30 days)."""
    MAX_BORROW_S = IntRange(0, 90 * 86_400)
    """The longest check-out (borrow) a license may allow (90 days); 0: no borrowing."""
    CI_SEATS = IntRange(0, 1_000_000)
    """The CI pool: seats for machine keys beside max_seats (0: no pool)."""
    MAX_LIST_ITEMS = 100
    """Features, allowed domains."""
    SUPPORT_CONTACT_CHARS = 200
    """A vendor's support line: a short text or URL shown with every seat refusal."""

    BY_FIELD = {
        "max_seats": MAX_SEATS, "lease_ttl_s": LEASE_TTL_S, "heartbeat_interval_s": HEARTBEAT_INTERVAL_S,
        "revive_window_s": REVIVE_WINDOW_S, "max_sessions_per_user": MAX_SESSIONS_PER_USER,
        "offline_grace_s": OFFLINE_GRACE_S, "max_borrow_s": MAX_BORROW_S, "ci_seats": CI_SEATS,
    }

    @classmethod
    def support_contact_problem(cls, value: str | None) -> str | None:
        """Why a support line cannot be one (None: it can, or there is none)."""
        if value is None:
            return None
        if not value.strip() or len(value) > cls.SUPPORT_CONTACT_CHARS:
            return f"support_contact must be 1 to {cls.SUPPORT_CONTACT_CHARS} characters, not blank"
        if any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in value):
            return "support_contact must hold no control characters (it is shown in the tools of users)"
        return None

    @classmethod
    def problems(cls, **values: int) -> list[str]:
        """One message per named setting outside its bounds (interval < ttl included)."""
        found = [f"{name} must be between {cls.BY_FIELD[name].low} and {cls.BY_FIELD[name].high}"
                 for name, value in values.items() if value not in cls.BY_FIELD[name]]
        ttl, interval = values.get("lease_ttl_s"), values.get("heartbeat_interval_s")
        if ttl is not None and interval is not None and not interval < ttl:
            found.append("heartbeat_interval_s must be shorter than lease_ttl_s")
        return found


LEASE_TOKEN_MAX_S = LicenseBounds.MAX_BORROW_S.high + LicenseBounds.OFFLINE_GRACE_S.high
"""How far past its delegation certificate's expiry a lease token may stay valid
offline (`exp + grace`): every certificate states it as `lease_max_s`."""


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    created_ms: int


@dataclass(frozen=True)
class License:
    id: str
    tenant_id: str
    max_seats: int
    tier: str
    features: tuple[str, ...]
    expires_ms: int | None
    suspended: bool
    allowed_domains: tuple[str, ...]
    lease_ttl_s: int
    heartbeat_interval_s: int
    key_hash: str
    created_ms: int
    updated_ms: int
    revive_window_s: int = 0
    """A heartbeat this late after its lease ran out may still revive it (if a seat is free)."""
    max_sessions_per_user: int = 0
    """Live sessions one user may hold at once, across machines (0: no limit)."""
    offline_grace_s: int = 0
    """How long past its signed exp a lease token stays valid to a client that cannot
    reach the server (stated, signed, in every token as `grace`)."""
    max_borrow_s: int = 0
    """Longest check-out (borrow) a session may take; 0: borrowing not allowed."""
    revoked_ms: int | None = None
    """Set when the owner revoked (deleted) the license; its key no longer opens anything."""
    suspended_by: str | None = None
    """Who suspended it: "owner" (the vendor: only the owner resumes it) or "admin"."""
    policy: SeatPolicy = field(default_factory=SeatPolicy)
    """Who may hold its seats, and which (shared/domain/policies.py); default: a bare count."""
    ci_seats: int = 0
    """The CI pool (an entitlement): seats beside max_seats that only machine keys take, and
    machine keys take no other while it exists (shared/domain/machine_keys.py). 0: no pool,
    machines hold ordinary seats under the ordinary rules."""
    support_contact: str | None = None
    """The vendor's support line for this license (owner-set): shown to a tool with every
    refusal of a seat operation (403, 409, 410) as the error's `support`."""
    anomaly_rules: AnomalyRules = field(default_factory=AnomalyRules)
    """Conflict detection's thresholds (shared/domain/anomalies.py): the defaults but for
    what the license's administrator set."""

    def script_policy(self) -> dict[str, Any] | None:
        """What the seat scripts need of the license's rules: its policy's, and the CI pool."""
        return self.policy.script_policy(self.max_seats, ci_seats=self.ci_seats)

    def is_expired(self, now_ms: int) -> bool:
        return self.expires_ms is not None and now_ms >= self.expires_ms

    def admits_email(self, email: str | None, email_verified: bool) -> bool:
        """Whether a user may hold a seat under the license's allowed-domain rule."""
        if not self.allowed_domains:
            return True
        if not email or not email_verified or "@" not in email:
            return False
        return email.rsplit("@", 1)[1].lower() in self.allowed_domains

    def admin_view(self) -> dict[str, Any]:
        """Everything an administrator of the tenant may read (never the key or its hash)."""
        return {
            **self.public_view(),
            "tenant": self.tenant_id,
            "max_seats": self.max_seats,
            "suspended": self.suspended,
            "suspended_by": self.suspended_by,
            "allowed_domains": list(self.allowed_domains),
            "lease_ttl_s": self.lease_ttl_s,
            "heartbeat_interval_s": self.heartbeat_interval_s,
            "revive_window_s": self.revive_window_s,
            "max_sessions_per_user": self.max_sessions_per_user,
            "offline_grace_s": self.offline_grace_s,
            "max_borrow_s": self.max_borrow_s,
            "policy": self.policy.as_json(),
            "ci_seats": self.ci_seats,
            "support_contact": self.support_contact,
            "anomaly_rules": self.anomaly_rules.as_json(),
            "created_at": rfc3339(self.created_ms),
            "updated_at": rfc3339(self.updated_ms),
            "revoked_at": rfc3339(self.revoked_ms),
        }

    def public_view(self) -> dict[str, Any]:
        """What a seat holder is told about the license (the `license` of openapi.yaml)."""
        return {"id": self.id, "tier": self.tier, "features": list(self.features),
                "expires_at": rfc3339(self.expires_ms)}
