"""Request bodies and query strings of the admin function (openapi.yaml), validated strictly.

Numeric bounds come from shared.domain.LicenseBounds, the one place they are defined.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.domain import LicenseBounds
from shared.ids import LICENSE_ID, TENANT_ID

_TIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_TENANT_PATTERN = f"^{TENANT_ID.pattern}$"
_NO_CONTROLS = r"^[^\x00-\x1f\x7f]+$"  # text shown to people


def bounded(name: str, default: Any = ...) -> Any:
    """A pydantic field held to the license setting's bounds."""
    limits = LicenseBounds.BY_FIELD[name]
    return Field(default=default, ge=limits.low, le=limits.high)


def _list(default_factory: Any = None) -> Any:
    if default_factory is None:
        return Field(default=None, max_length=LicenseBounds.MAX_LIST_ITEMS)
    return Field(default_factory=default_factory, max_length=LicenseBounds.MAX_LIST_ITEMS)


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class CreateTenantRequest(_Body):
    id: str | None = Field(default=None, min_length=3, max_length=63, pattern=_TENANT_PATTERN)
    name: str = Field(min_length=1, max_length=200, pattern=_NO_CONTROLS)


class CreateLicenseRequest(_Body):
    tenant: str | None = Field(default=None, min_length=3, max_length=63, pattern=_TENANT_PATTERN)
    max_seats: int = bounded("max_seats")
    tier: str = Field(min_length=1, max_length=64, pattern=_TIER_PATTERN)
    features: list[str] = _list(list)
    expires_at: str | None = None
    lease_ttl_s: int | None = bounded("lease_ttl_s", None)
    heartbeat_interval_s: int | None = bounded("heartbeat_interval_s", None)
    allowed_domains: list[str] = _list(list)
    revive_window_s: int = bounded("revive_window_s", 0)
    max_sessions_per_user: int = bounded("max_sessions_per_user", 0)
    offline_grace_s: int = bounded("offline_grace_s", 0)
    max_borrow_s: int = bounded("max_borrow_s", 0)


class UpdateLicenseRequest(_Body):
    """Only the fields present change; `expires_at: null` removes the expiry."""

    max_seats: int | None = bounded("max_seats", None)
    lease_ttl_s: int | None = bounded("lease_ttl_s", None)
    heartbeat_interval_s: int | None = bounded("heartbeat_interval_s", None)
    expires_at: str | None = None
    suspended: bool | None = None
    tier: str | None = Field(default=None, min_length=1, max_length=64, pattern=_TIER_PATTERN)
    features: list[str] | None = _list()
    allowed_domains: list[str] | None = _list()
    revive_window_s: int | None = bounded("revive_window_s", None)
    max_sessions_per_user: int | None = bounded("max_sessions_per_user", None)
    offline_grace_s: int | None = bounded("offline_grace_s", None)
    max_borrow_s: int | None = bounded("max_borrow_s", None)


# -- query strings (parsed by the function layer: shared.http Call.query) ------------------
_LICENSE_PATTERN = f"^{LICENSE_ID.pattern}$"
_MAX_PAGE = 500


class _Query(BaseModel):
    # Query values arrive as text: numbers are converted (lax); other parameters are ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)


class TenantsQuery(_Query):
    limit: int = Field(default=100, ge=1, le=_MAX_PAGE)
    after: str | None = Field(default=None, pattern=_TENANT_PATTERN)


class LicensesQuery(_Query):
    tenant: str | None = Field(default=None, pattern=_TENANT_PATTERN)
    limit: int = Field(default=100, ge=1, le=_MAX_PAGE)
    after: str | None = Field(default=None, pattern=_LICENSE_PATTERN)


class EventsQuery(_Query):
    license: str | None = Field(default=None, pattern=_LICENSE_PATTERN)
    tenant: str | None = Field(default=None, pattern=_TENANT_PATTERN)
    limit: int = Field(default=100, ge=1, le=_MAX_PAGE)


class UsageQuery(_Query):
    days: int = Field(default=30, ge=1, le=400)
