"""Records as the service reasons about them; times are integer epoch milliseconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.clock import rfc3339


MAX_OFFLINE_GRACE_S = 30 * 86_400
"""The longest offline grace a license may give its lease tokens."""
MAX_BORROW_S = 90 * 86_400
"""The longest check-out (borrow) a license may allow."""
LEASE_TOKEN_MAX_S = MAX_BORROW_S + MAX_OFFLINE_GRACE_S
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
            "created_at": rfc3339(self.created_ms),
            "updated_at": rfc3339(self.updated_ms),
            "revoked_at": rfc3339(self.revoked_ms),
        }

    def public_view(self) -> dict[str, Any]:
        """What a seat holder is told about the license (API.md `license`)."""
        return {"id": self.id, "tier": self.tier, "features": list(self.features), "expires_at": rfc3339(self.expires_ms)}


@dataclass(frozen=True)
class SessionRecord:
    id: str
    license_id: str
    tenant_id: str
    uid: str
    hardware_id: str
    acquired_ms: int
    lease_expires_ms: int | None
    client: dict[str, str] = field(default_factory=dict)
    status: str = "active"  # active | ended
    ended_ms: int | None = None
    end_reason: str | None = None  # released | expired | forced | revoked
    last_heartbeat_ms: int | None = None
    borrowed_until_ms: int | None = None
    """Set by a borrow: the signed token of this session is valid offline until then."""
    seat_held_until_ms: int | None = None
    """An ended borrow whose seat stays counted until then (its token is still usable)."""


@dataclass(frozen=True)
class AuditEvent:
    """One line of the audit log. Deterministic ids make re-recording idempotent."""

    id: str
    tenant_id: str
    license_id: str | None
    type: str  # acquire | release | expire | force-release | license.create | ...
    actor: str  # uid, or "system"
    at_ms: int
    session_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
