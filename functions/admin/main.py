"""admin/...: administration (openapi.yaml, /admin/...); roles owner and admin (docs/design.md).

Each route is declared once, by its handler below: the wrapper's route table is derived
from it. Bodies and query strings are parsed here into typed requests for the use case.
"""

from collections.abc import Callable

import functions_framework

from shared.http import Call, HandlerResult, json_function, methods_by_route
from shared.licensing.admin_requests import (
    CreateLicenseRequest,
    CreateMachineKeyRequest,
    CreateTenantRequest,
    EventsQuery,
    KeysQuery,
    LicensesQuery,
    TenantsQuery,
    UpdateLicenseRequest,
    UsageQuery,
)
from shared.licensing.administration import Administration
from shared.runtime import runtime


def _service() -> Administration:
    return runtime().administration


HANDLERS: dict[tuple[str, str], Callable[[Call], HandlerResult]] = {
    ("POST", "tenants"): lambda call: (201, _service().create_tenant(call.caller, call.parse(CreateTenantRequest))),
    ("GET", "tenants"): lambda call: (200, _service().list_tenants(call.caller, call.query(TenantsQuery))),
    ("POST", "licenses"):
        lambda call: (201, _service().create_license(call.caller, call.parse(CreateLicenseRequest))),
    ("GET", "licenses"): lambda call: (200, _service().list_licenses(call.caller, call.query(LicensesQuery))),
    ("GET", "licenses/{license_id}"):
        lambda call: (200, _service().get_license(call.caller, call.params["license_id"])),
    ("PATCH", "licenses/{license_id}"):
        lambda call: (200, _service().update_license(call.caller, call.params["license_id"],
                                                     call.parse(UpdateLicenseRequest))),
    ("DELETE", "licenses/{license_id}"):
        lambda call: (200, _service().revoke_license(call.caller, call.params["license_id"])),
    ("GET", "licenses/{license_id}/sessions"):
        lambda call: (200, _service().list_sessions(call.caller, call.params["license_id"])),
    ("DELETE", "licenses/{license_id}/sessions/{session_id}"):
        lambda call: (200, _service().force_release(call.caller, call.params["license_id"],
                                                    call.params["session_id"])),
    ("GET", "licenses/{license_id}/usage"):
        lambda call: (200, _service().usage(call.caller, call.params["license_id"], call.query(UsageQuery))),
    ("GET", "licenses/{license_id}/queue"):
        lambda call: (200, _service().list_queue(call.caller, call.params["license_id"])),
    ("DELETE", "licenses/{license_id}/queue/{ticket}"):
        lambda call: (200, _service().remove_ticket(call.caller, call.params["license_id"], call.params["ticket"])),
    ("POST", "keys"):
        lambda call: (201, _service().create_machine_key(call.caller, call.parse(CreateMachineKeyRequest))),
    ("GET", "keys"): lambda call: (200, _service().list_machine_keys(call.caller, call.query(KeysQuery))),
    ("DELETE", "keys/{key_id}"):
        lambda call: (200, _service().revoke_machine_key(call.caller, call.params["key_id"])),
    ("GET", "events"): lambda call: (200, _service().list_events(call.caller, call.query(EventsQuery))),
}


@functions_framework.http
@json_function("admin", routes=methods_by_route(HANDLERS), checks_accounts=True)
def admin(call: Call) -> HandlerResult:
    return HANDLERS[(call.request.method, call.route)](call)
