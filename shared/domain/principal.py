"""The authenticated caller and what its role lets it do (see shared/auth for the claims)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ROLES = ("owner", "admin")
MACHINE_UID_PREFIX = "key:"
"""The uid of a machine principal is `key:<key id>` (shared/domain/machine_keys.py); the auth
boundary refuses it in an ID token, so the seat scripts may tell a machine by it."""


@dataclass(frozen=True)
class MachineGrant:
    """What a machine key lets its bearer do: hold seats of (mode "seat") or validate
    (mode "validate") the listed licenses of its tenant, nothing else."""

    key_id: str
    name: str
    licenses: tuple[str, ...]
    mode: str  # "seat" | "validate"

    def covers(self, license_id: str) -> bool:
        return license_id in self.licenses

    @property
    def holds_seats(self) -> bool:
        return self.mode == "seat"


@dataclass(frozen=True)
class Principal:
    uid: str
    email: str | None = None
    email_verified: bool = False
    tenant: str | None = None
    role: str | None = None  # "owner" (platform operator: the vendor) | "admin" (of `tenant`) | None
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """The token's other custom claims (text, or lists of text): what seat-policy groups
    defined by a claim match (shared/domain/policies.py)."""
    machine: MachineGrant | None = None
    """Set for a machine principal (a build runner or CI job presenting a machine key):
    uid `key:<key id>`, `tenant` the key's, no role, no email."""

    @property
    def is_machine(self) -> bool:
        return self.machine is not None

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"

    @property
    def is_tenant_admin(self) -> bool:
        """An admin with a tenant to administer (an admin claim without one grants nothing)."""
        return self.role == "admin" and self.tenant is not None

    def administers(self, tenant_id: str) -> bool:
        """Owner of the platform, or admin of this very tenant."""
        return self.is_owner or (self.is_tenant_admin and self.tenant == tenant_id)
