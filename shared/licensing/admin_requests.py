"""Request bodies of the admin function (API.md "Administration"), validated strictly."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.ids import TENANT_ID
from shared.store.models import MAX_BORROW_S, MAX_OFFLINE_GRACE_S

_NAME = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class CreateTenantRequest(_Body):
    id: str | None = Field(default=None, min_length=3, max_length=63, pattern=f"^{TENANT_ID.pattern}$")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")  # shown to people: no controls


class CreateLicenseRequest(_Body):
    tenant: str | None = Field(default=None, min_length=3, max_length=63, pattern=f"^{TENANT_ID.pattern}$")
    max_seats: int = Field(ge=1, le=1_000_000)
    tier: str = _NAME
    features: list[str] = Field(default_factory=list, max_length=100)
    expires_at: str | None = None
    lease_ttl_s: int | None = Field(default=None, ge=10, le=86_400)
    heartbeat_interval_s: int | None = Field(default=None, ge=1, le=86_400)
    allowed_domains: list[str] = Field(default_factory=list, max_length=100)
    revive_window_s: int = Field(default=0, ge=0, le=86_400)
    max_sessions_per_user: int = Field(default=0, ge=0, le=10_000)
    offline_grace_s: int = Field(default=0, ge=0, le=MAX_OFFLINE_GRACE_S)
    max_borrow_s: int = Field(default=0, ge=0, le=MAX_BORROW_S)


class UpdateLicenseRequest(_Body):
    """Only the fields present change; `expires_at: null` removes the expiry."""

    max_seats: int | None = Field(default=None, ge=1, le=1_000_000)
    lease_ttl_s: int | None = Field(default=None, ge=10, le=86_400)
    heartbeat_interval_s: int | None = Field(default=None, ge=1, le=86_400)
    expires_at: str | None = None
    suspended: bool | None = None
    tier: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    features: list[str] | None = Field(default=None, max_length=100)
    allowed_domains: list[str] | None = Field(default=None, max_length=100)
    revive_window_s: int | None = Field(default=None, ge=0, le=86_400)
    max_sessions_per_user: int | None = Field(default=None, ge=0, le=10_000)
    offline_grace_s: int | None = Field(default=None, ge=0, le=MAX_OFFLINE_GRACE_S)
    max_borrow_s: int | None = Field(default=None, ge=0, le=MAX_BORROW_S)
