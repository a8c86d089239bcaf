"""The authenticated caller and what its custom claims let it do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    uid: str
    email: str | None = None
    email_verified: bool = False
    tenant: str | None = None
    role: str | None = None  # "owner" (platform operator) | "admin" (of `tenant`) | None

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"

    def administers(self, tenant_id: str) -> bool:
        """Owner of the platform, or admin of this very tenant."""
        return self.is_owner or (self.role == "admin" and self.tenant == tenant_id)
