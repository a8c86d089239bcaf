"""admin/...: tenant administration (API.md "Administration"); roles admin and owner."""

import functions_framework

from shared.http import Call, json_function
from shared.licensing.admin_requests import CreateLicenseRequest, CreateTenantRequest, UpdateLicenseRequest
from shared.runtime import runtime

ROUTES = {
    "tenants": ["GET", "POST"],
    "licenses": ["GET", "POST"],
    "licenses/{license_id}": ["GET", "PATCH", "DELETE"],
    "licenses/{license_id}/sessions": ["GET"],
    "licenses/{license_id}/sessions/{session_id}": ["DELETE"],
    "licenses/{license_id}/usage": ["GET"],
    "events": ["GET"],
}


@functions_framework.http
@json_function("admin", routes=ROUTES, checks_accounts=True)
def admin(call: Call):
    service, caller, query, params = runtime().administration, call.principal, call.request.args, call.params
    match call.request.method, call.route:
        case "POST", "tenants":
            return 201, service.create_tenant(caller, call.parse(CreateTenantRequest))
        case "GET", "tenants":
            return 200, service.list_tenants(caller, after=query.get("after"), limit=query.get("limit"))
        case "POST", "licenses":
            return 201, service.create_license(caller, call.parse(CreateLicenseRequest))
        case "GET", "licenses":
            return 200, service.list_licenses(caller, tenant=query.get("tenant"), after=query.get("after"),
                                              limit=query.get("limit"))
        case "GET", "licenses/{license_id}":
            return 200, service.get_license(caller, params["license_id"])
        case "PATCH", "licenses/{license_id}":
            return 200, service.update_license(caller, params["license_id"], call.parse(UpdateLicenseRequest))
        case "DELETE", "licenses/{license_id}":
            return 200, service.revoke_license(caller, params["license_id"])
        case "GET", "licenses/{license_id}/sessions":
            return 200, service.list_sessions(caller, params["license_id"])
        case "DELETE", "licenses/{license_id}/sessions/{session_id}":
            return 200, service.force_release(caller, params["license_id"], params["session_id"])
        case "GET", "licenses/{license_id}/usage":
            return 200, service.usage(caller, params["license_id"], days=query.get("days"))
        case "GET", "events":
            return 200, service.list_events(caller, license_id=query.get("license"), tenant=query.get("tenant"),
                                            limit=query.get("limit"))
