"""admin/...: administration (openapi.yaml, /admin/...); roles owner and admin (docs/design.md).

Each route is declared once, by its handler below: the wrapper's route table is derived
from it. Bodies and query strings are parsed here into typed requests for the use case.
"""

from collections.abc import Callable

import functions_framework

from shared.http import Call, HandlerResult, json_function, methods_by_route
from shared.http.downloads import csv_download, wants_csv
from shared.licensing.admin_requests import (
    AcknowledgeAnomalyRequest,
    AnomaliesQuery,
    CreateLicenseRequest,
    CreateMachineKeyRequest,
    CreateTenantRequest,
    CreateWebhookRequest,
    DeliveriesQuery,
    EventsQuery,
    KeysQuery,
    LicensesQuery,
    ReportQuery,
    RotateWebhookRequest,
    StatementQuery,
    TenantReportQuery,
    TenantsQuery,
    UpdateLicenseRequest,
    UpdateWebhookRequest,
    UsageQuery,
    UsersReportQuery,
    WebhooksQuery,
)
from shared.licensing.administration import Administration
from shared.licensing.anomaly_admin import AnomalyAdmin
from shared.licensing.usage_reports import UsageReports
from shared.licensing.webhook_admin import WebhookAdmin
from shared.runtime import runtime


def _service() -> Administration:
    return runtime().administration


def _reports() -> UsageReports:
    return runtime().usage_reports


def _webhooks() -> WebhookAdmin:
    return runtime().webhook_admin


def _anomalies() -> AnomalyAdmin:
    return runtime().anomaly_admin


def _table(call: Call, answer: dict, rows: str, name: str) -> HandlerResult:
    """A report as JSON, or its rows as CSV (`?format=csv`, or Accept: text/csv)."""
    if not wants_csv(call.request, call.request.args.get("format")):
        return 200, answer
    table = answer[rows]
    columns = list(table[0]) if table else _EMPTY_COLUMNS[rows]
    period = f"{answer['from'][:10]}_{answer['to'][:10]}"
    return 200, csv_download(table, columns, f"{name}_{period}.csv")


_EMPTY_COLUMNS = {
    "series": ["start"],
    "users": ["uid", "seat_hours", "sessions", "peak_sessions", "last_seen"],
    "licenses": ["license", "tenant", "max_seats", "peak", "p95", "average", "utilization", "seat_hours",
                 "hours_at_full", "denials", "right_size"],
}


def _report(call: Call) -> HandlerResult:
    query = call.query(ReportQuery)
    answer = _reports().report(call.caller, call.params["license_id"], query)
    return _table(call, answer, "series", f"{answer['license']}_{query.granularity}")


def _users_report(call: Call) -> HandlerResult:
    answer = _reports().users(call.caller, call.params["license_id"], call.query(UsersReportQuery))
    return _table(call, answer, "users", f"{answer['license']}_users")


def _tenant_report(call: Call) -> HandlerResult:
    answer = _reports().tenant_report(call.caller, call.query(TenantReportQuery))
    return _table(call, answer, "licenses", f"{answer['tenant'] or 'all'}_licenses")


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
        lambda call: (200, _reports().recent_days(call.caller, call.params["license_id"], call.query(UsageQuery))),
    ("GET", "licenses/{license_id}/report"): _report,
    ("GET", "licenses/{license_id}/report/users"): _users_report,
    ("GET", "licenses/{license_id}/statement"):
        lambda call: (200, _reports().statement(call.caller, call.params["license_id"], call.query(StatementQuery))),
    ("GET", "report"): _tenant_report,
    ("GET", "licenses/{license_id}/queue"):
        lambda call: (200, _service().list_queue(call.caller, call.params["license_id"])),
    ("DELETE", "licenses/{license_id}/queue/{ticket}"):
        lambda call: (200, _service().remove_ticket(call.caller, call.params["license_id"], call.params["ticket"])),
    ("POST", "keys"):
        lambda call: (201, _service().create_machine_key(call.caller, call.parse(CreateMachineKeyRequest))),
    ("GET", "keys"): lambda call: (200, _service().list_machine_keys(call.caller, call.query(KeysQuery))),
    ("DELETE", "keys/{key_id}"):
        lambda call: (200, _service().revoke_machine_key(call.caller, call.params["key_id"])),
    ("GET", "anomalies"): lambda call: (200, _anomalies().list(call.caller, call.query(AnomaliesQuery))),
    ("GET", "licenses/{license_id}/anomalies"):
        lambda call: (200, _anomalies().list(call.caller, call.query(AnomaliesQuery),
                                             license_id=call.params["license_id"])),
    ("POST", "anomalies/{flag_id}/acknowledge"):
        lambda call: (200, _anomalies().acknowledge(call.caller, call.params["flag_id"],
                                                    call.parse(AcknowledgeAnomalyRequest))),
    ("GET", "events"): lambda call: (200, _service().list_events(call.caller, call.query(EventsQuery))),
    ("POST", "webhooks"): lambda call: (201, _webhooks().create(call.caller, call.parse(CreateWebhookRequest))),
    ("GET", "webhooks"): lambda call: (200, _webhooks().list(call.caller, call.query(WebhooksQuery))),
    ("GET", "webhooks/{webhook_id}"): lambda call: (200, _webhooks().get(call.caller, call.params["webhook_id"])),
    ("PATCH", "webhooks/{webhook_id}"):
        lambda call: (200, _webhooks().update(call.caller, call.params["webhook_id"],
                                              call.parse(UpdateWebhookRequest))),
    ("DELETE", "webhooks/{webhook_id}"):
        lambda call: (200, _webhooks().delete(call.caller, call.params["webhook_id"])),
    ("GET", "webhooks/{webhook_id}/deliveries"):
        lambda call: (200, _webhooks().deliveries(call.caller, call.params["webhook_id"],
                                                  call.query(DeliveriesQuery))),
    ("POST", "webhooks/{webhook_id}/test"):
        lambda call: (200, _webhooks().send_test(call.caller, call.params["webhook_id"])),
    ("POST", "webhooks/{webhook_id}/rotate"):
        lambda call: (200, _webhooks().rotate(call.caller, call.params["webhook_id"],
                                              call.parse(RotateWebhookRequest))),
}


@functions_framework.http
@json_function("admin", routes=methods_by_route(HANDLERS), checks_accounts=True)
def admin(call: Call) -> HandlerResult:
    return HANDLERS[(call.request.method, call.route)](call)
