"""Who may administer what: the checks every admin route runs first (roles are described
in shared/licensing/administration.py). In this order: role (403), then visibility
(another tenant's object is 404, exactly as if it did not exist)."""

from __future__ import annotations

from typing import Protocol

from shared.domain import License, Principal
from shared.errors import Forbidden, NotFound
from shared.ids import LICENSE_ID


class _Licenses(Protocol):
    def get_license(self, license_id: str) -> License | None: ...


def require_admin(caller: Principal) -> None:
    if caller.role == "admin" and not caller.is_tenant_admin:
        raise Forbidden("an admin token must carry a valid tenant claim")
    if not (caller.is_owner or caller.is_tenant_admin):
        raise Forbidden("administration needs the admin or owner role")


def require_owner(caller: Principal, what: str) -> None:
    if not caller.is_owner:
        raise Forbidden(f"only the platform owner (the vendor) {what}")


def visible_license(store: _Licenses, caller: Principal, license_id: str) -> License:
    """The license, if the caller administers its tenant; else 404 as for no license."""
    require_admin(caller)
    lic = store.get_license(license_id) if LICENSE_ID.fullmatch(license_id) else None
    if lic is None or not caller.administers(lic.tenant_id):
        raise NotFound(f"no license {license_id}")
    return lic


def tenant_scope(caller: Principal, asked: str | None) -> str | None:
    """The tenant a listing covers: the owner's choice (None: every tenant), an admin's own
    tenant always. The store is asked for every tenant only for the owner."""
    require_admin(caller)
    if caller.is_owner:
        return asked
    if caller.tenant is None:  # never "every tenant" for anyone but the owner
        raise Forbidden("an admin token must carry a valid tenant claim")
    return caller.tenant
