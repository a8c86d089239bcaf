"""The log-based metrics select what the functions really log (issue 12, offline check 4).

A logging metric's filter is in the Logging query language; Cloud Monitoring's filter
functions (starts_with, one_of, ...) are not part of it and make the API answer 400 (or
match nothing). Every `jsonPayload.<field>` a metric filters on or extracts must be a field
the request log writes: shared/http/request_log.py's fixed fields, the error's `backend`
(shared/http/endpoint.py) and whatever a function `annotate()`s (read from the code).
And alert policies on those metrics wait for the gate that lets Monitoring learn them.
"""

from __future__ import annotations

import ast
import re

from tests.unit.terraform_tree import MODULES, REPO, locals_of, module_resources, text, unquote

MONITORING = MODULES / "monitoring" / "main.tf"
# Cloud Monitoring's filter functions (cloud.google.com/monitoring/api/v3/filters): none
# is valid in a Logging query.
MONITORING_ONLY = ("starts_with(", "ends_with(", "has_substring(", "one_of(", "monitoring.regex.full_match(")


def _logged_fields() -> set[str]:
    source = (REPO / "shared" / "http" / "request_log.py").read_text()
    tree = ast.parse(source)
    fixed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "entry":
            assert isinstance(node.value, ast.Dict)
            fixed = {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    assert {"function", "outcome", "status", "latency_ms"} <= fixed
    endpoint = (REPO / "shared" / "http" / "endpoint.py").read_text()
    fixed |= set(re.findall(r'fields\["(\w+)"\]', endpoint))
    for path in [*(REPO / "functions").rglob("*.py"), *(REPO / "shared").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "annotate":
                fixed |= {keyword.arg for keyword in node.keywords if keyword.arg}
    return fixed


def _metrics() -> dict[str, dict]:
    return {key.split(".", 1)[1]: r.body for key, r in module_resources("monitoring").items()
            if key.startswith("google_logging_metric.")}


def _filter_text(body: dict) -> str:
    requests = text(locals_of(MONITORING)["requests"])
    return text(body["filter"]).replace("${local.requests}", requests)


def test_metric_filters_use_the_logging_query_language():
    assert _metrics()
    for name, body in _metrics().items():
        text = _filter_text(body)
        for function in MONITORING_ONLY:
            assert function not in text, f"{name}: {function} is Cloud Monitoring filter syntax, not Logging's"
        assert 'resource.type="cloud_run_revision"' in text
        assert 'resource.labels.service_name=~"^${var.environment}-"' in text, f"{name}: this environment's functions"


def test_every_field_a_metric_reads_is_one_the_request_log_writes():
    logged = _logged_fields()
    for name, body in _metrics().items():
        read = set(re.findall(r"jsonPayload\.(\w+)", _filter_text(body)))
        for extractor in [body.get("value_extractor", ""), *body.get("label_extractors", {}).values()]:
            read |= set(re.findall(r"jsonPayload\.(\w+)", text(extractor)))
        assert read <= logged, f"{name} reads {sorted(read - logged)}, which no request log line has"


def test_alert_policies_wait_until_monitoring_knows_their_metrics():
    monitoring = module_resources("monitoring")
    [gate] = [r for key, r in monitoring.items() if key.startswith("time_sleep.")]
    waited_for = set(re.findall(r"google_logging_metric\.(\w+)", str(gate.body["triggers"])))
    duration = unquote(gate.body["create_duration"])
    assert duration.endswith("s") and int(duration[:-1]) >= 300  # "up to ~10 minutes"
    policies = {key: r for key, r in monitoring.items() if key.startswith("google_monitoring_alert_policy.")}
    assert policies
    for key, policy in policies.items():
        assert f"${{time_sleep.{gate.name}}}" in policy.body.get("depends_on", []), f"{key} must wait for the gate"
        used = set(re.findall(r"google_logging_metric\.(\w+)\.name", str(policy.body["conditions"])))
        assert used <= waited_for, f"{key} uses {sorted(used - waited_for)}, which the gate does not wait for"


def test_the_lint_knows_the_request_logs_fields():
    assert {"backend", "expired", "reconciled"} <= _logged_fields()
