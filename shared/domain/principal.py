"""The authenticated caller and what its role lets it do (see shared/auth for the claims)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ROLES = ("owner", "admin")


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
