"""openapi.yaml is kept true: real responses of every operation are validated against it."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import requests
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_spec_validator import validate as validate_spec

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"


def test_the_spec_itself_is_valid_openapi():
    validate_spec(yaml.safe_load(SPEC_PATH.read_text()))


class Recorder:
    """Sends requests to the function server and validates every answer against the spec."""

    def __init__(self, base_url: str, spec: dict):
        self.base_url = base_url
        # A CSV answer is text: decoded as openapi-core decodes text/plain, then checked as a string.
        csv_text = {"text/csv": lambda value, **_: value.decode("utf-8")}
        self.openapi = OpenAPI.from_dict(spec, config=Config(extra_media_type_deserializers=csv_text))
        self.error_schema = spec["components"]["schemas"]["Error"]
        self.session = requests.Session()
        self.seen: set[tuple[str, str, int]] = set()

    def __call__(self, method: str, path: str, *, token: str | None = None, expect: int, **kwargs) -> dict:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self.session.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)
        assert response.status_code == expect, (method, path, response.status_code, response.text)
        if expect == 405:  # a method the path does not list: no operation to check against
            jsonschema.validate(response.json(), self.error_schema)
            assert response.headers["Allow"]
            return response.json()
        self.openapi.validate_response(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response))
        self.seen.add((method.lower(), path.split("?")[0], response.status_code))
        return response.json()


@pytest.fixture(scope="module")
def api(function_server):
    spec = yaml.safe_load(SPEC_PATH.read_text())
    spec["servers"] = [{"url": function_server.base_url}]
    return Recorder(function_server.base_url, spec)


def test_every_operation_answers_as_the_spec_says(api, id_token, stack):
    tenant = f"oas-{secrets.token_hex(3)}"
    owner, admin = id_token("root", role="owner"), id_token("ops", role="admin", tenant=tenant)
    user, other = id_token("dev-1"), id_token("dev-2")

    # public
    api("GET", "/health", expect=200)
    api("GET", "/health/ready", expect=200)
    api("GET", "/jwks", expect=200)
    api("POST", "/health", expect=405)

    # administration: a tenant, a license
    api("POST", "/admin/tenants", token=owner, json={"id": tenant, "name": "OAS"}, expect=201)
    api("GET", "/admin/tenants", token=owner, expect=200)
    created = api("POST", "/admin/licenses", token=owner, json={"tenant": tenant, "max_seats": 1, "tier": "pro",
                                                                "features": ["x"]}, expect=201)
    lic, key = created["license"]["id"], created["license_key"]
    api("POST", "/admin/licenses", token=owner, json={"tenant": tenant, "max_seats": 0, "tier": "pro"}, expect=400)
    api("POST", "/admin/licenses", token=admin, json={"tenant": tenant, "max_seats": 9, "tier": "pro"}, expect=403)
    api("GET", "/admin/licenses", token=admin, expect=200)
    api("GET", f"/admin/licenses/{lic}", token=admin, expect=200)
    api("GET", f"/admin/licenses/{lic}", token=user, expect=403)
    api("GET", f"/admin/licenses/{lic}", token=id_token("x", role="admin", tenant="elsewhere"), expect=404)

    # a seat policy (on a license of its own: the seats below are a bare count's)
    policy = {"groups": [{"name": "eng", "uids": ["dev-9"], "domains": ["eng.example.com"],
                          "claim": {"name": "team", "value": "eng"}}],
              "include": {"groups": ["eng"], "users": ["ada@example.com"]},
              "exclude": {"users": ["dev-8"], "hardware": ["hw-x"]},
              "reserve": [{"group": "eng", "seats": 1}], "max": [{"group": "eng", "seats": 2}]}
    with_policy = api("POST", "/admin/licenses", token=owner, expect=201, json={
        "tenant": tenant, "max_seats": 4, "tier": "pro", "policy": {**policy, "overdraft_ratio": 1.5}})
    assert with_policy["license"]["policy"] == {**policy, "overdraft_ratio": 1.5}
    governed = f"/admin/licenses/{with_policy['license']['id']}"
    changed = api("PATCH", governed, token=admin, json={"policy": {**policy, "overdraft_ratio": 1.5,
                                                                   "max": [{"group": "eng", "seats": 1}]}}, expect=200)
    assert changed["license"]["policy"]["max"] == [{"group": "eng", "seats": 1}]
    api("PATCH", governed, token=admin, json={"policy": {**policy, "overdraft_seats": 2}}, expect=403)
    api("PATCH", governed, token=owner, json={"policy": {**policy, "reserve": [{"group": "eng", "seats": 9}]}},
        expect=400)
    api("PATCH", governed, token=owner, json={"policy": {**policy, "overdraft_seats": 2}}, expect=200)
    api("PATCH", governed, token=owner, json={"max_seats": 1, "policy": None}, expect=200)
    assert api("GET", governed, token=admin, expect=200)["license"]["policy"] == {}

    # seats
    first = api("POST", "/acquire", token=user, json={"license_key": key, "hardware_id": "hw"}, expect=201)
    api("POST", "/acquire", token=user, json={"license_key": key, "hardware_id": "hw"}, expect=200)
    api("POST", "/acquire", token=other, json={"license_key": key, "hardware_id": "hw"}, expect=409)
    api("POST", "/acquire", token=user, json={"license_key": "CDT-0000", "hardware_id": "hw"}, expect=404)
    api("POST", "/acquire", token=user, json={"license_key": 5}, expect=400)
    api("POST", "/acquire", json={}, expect=401)
    api("POST", "/acquire", token=user, data="a=b", headers={"Content-Type": "application/x-www-form-urlencoded"}, expect=415)
    api("POST", "/acquire", token=user, data=b"x" * 70_000, headers={"Content-Type": "application/json"}, expect=413)
    api("POST", "/validate", token=user, json={"license_key": key}, expect=200)
    api("POST", "/validate", token=user, json={"license_key": "CDT-0000"}, expect=404)
    api("POST", "/heartbeat", token=user, json={"session_id": first["session_id"]}, expect=200)
    api("POST", "/heartbeat", token=other, json={"session_id": first["session_id"]}, expect=403)
    api("POST", "/heartbeat", token=user, json={"session_id": "nope"}, expect=404)

    api("GET", f"/admin/licenses/{lic}/sessions", token=admin, expect=200)
    api("GET", f"/admin/licenses/{lic}/usage", token=admin, expect=200)
    api("GET", f"/admin/licenses/{lic}/report", token=admin, expect=200)
    api("GET", f"/admin/licenses/{lic}/report", token=admin, params={"granularity": "hour", "from": "2026-01-01T00:00:00"},
        expect=400)
    api("GET", f"/admin/licenses/{lic}/report", token=user, expect=403)
    api("GET", f"/admin/licenses/{lic}/report", token=id_token("x", role="admin", tenant="elsewhere"), expect=404)
    api("GET", f"/admin/licenses/{lic}/report/users", token=admin, params={"sort": "last_seen"}, expect=200)
    api("GET", f"/admin/licenses/{lic}/report/users", token=admin, params={"limit": "0"}, expect=400)
    api("GET", "/admin/report", token=admin, expect=200)
    api("GET", "/admin/report", token=owner, params={"tenant": "Not A Tenant"}, expect=400)
    csv = api.session.get(f"{api.base_url}/admin/licenses/{lic}/report", params={"format": "csv"},
                          headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    assert csv.status_code == 200 and csv.headers["Content-Type"] == "text/csv; charset=utf-8"
    api.openapi.validate_response(RequestsOpenAPIRequest(csv.request), RequestsOpenAPIResponse(csv))
    api("PATCH", f"/admin/licenses/{lic}", token=admin, json={"max_seats": 2}, expect=403)
    api("PATCH", f"/admin/licenses/{lic}", token=owner, json={"max_seats": 2, "suspended": False}, expect=200)
    api("DELETE", f"/admin/licenses/{lic}/sessions/{first['session_id']}", token=admin, expect=200)
    api("POST", "/heartbeat", token=user, json={"session_id": first["session_id"]}, expect=410)
    api("POST", "/release", token=user, json={"session_id": first["session_id"]}, expect=200)

    second = api("POST", "/acquire", token=user, json={"license_key": key, "hardware_id": "hw2"}, expect=201)
    api("POST", "/borrow", token=user, json={"session_id": second["session_id"], "duration_s": 60}, expect=403)
    api("PATCH", f"/admin/licenses/{lic}", token=owner, json={"max_borrow_s": 600, "offline_grace_s": 60}, expect=200)
    api("POST", "/borrow", token=user, json={"session_id": second["session_id"], "duration_s": 600}, expect=200)
    api("POST", "/borrow/return", token=user, json={"session_id": second["session_id"]}, expect=200)
    third = api("POST", "/acquire", token=user, json={"license_key": key, "hardware_id": "hw2"}, expect=201)
    api("POST", "/release", token=user, json={"session_id": third["session_id"]}, expect=200)
    api("GET", "/admin/events", token=admin, params={"license": lic}, expect=200)
    api("PATCH", f"/admin/licenses/{lic}", token=admin, json={"suspended": True}, expect=200)
    api("POST", "/acquire", token=user, json={"license_key": key, "hardware_id": "hw3"}, expect=403)
    api("DELETE", f"/admin/licenses/{lic}", token=admin, expect=403)
    api("DELETE", f"/admin/licenses/{lic}", token=owner, expect=200)

    # machine keys, the CI pool, a support line, and the wait queue seen by an administrator
    pooled = api("POST", "/admin/licenses", token=owner, expect=201, json={
        "tenant": tenant, "max_seats": 1, "tier": "pro", "ci_seats": 1, "support_contact": "Acme IT, ext. 100",
        "policy": {"queue": {"poll_interval_s": 5}}})
    pooled_id, pooled_key = pooled["license"]["id"], pooled["license_key"]
    made = api("POST", "/admin/keys", token=admin, json={"name": "CI", "licenses": [pooled_id]}, expect=201)
    machine = made["api_key"]
    api("POST", "/admin/keys", token=admin, json={"name": "CI", "licenses": []}, expect=400)
    api("POST", "/admin/keys", token=admin, json={"name": "CI", "licenses": [f"lic_{'0' * 20}"]}, expect=404)
    api("POST", "/admin/keys", token=user, json={"name": "CI", "licenses": [pooled_id]}, expect=403)
    api("GET", "/admin/keys", token=admin, expect=200)
    api("GET", "/admin/keys", token=admin, params={"after": "nope"}, expect=400)
    api("GET", "/admin/keys", token=machine, expect=401)
    in_pool = api("POST", "/acquire", token=machine, json={"license_key": pooled_key, "hardware_id": "runner"},
                  expect=201)
    assert in_pool["ci"] is True
    api("POST", "/acquire", token=machine, json={"license_key": pooled_key, "hardware_id": "runner"}, expect=200)
    pool_full = api("POST", "/acquire", token=machine, json={"license_key": pooled_key, "hardware_id": "runner-2"},
                    expect=409)
    assert pool_full["error"]["pool"] == "ci" and pool_full["error"]["support"] == "Acme IT, ext. 100"
    api("POST", "/acquire", token=machine, json={"license_key": key, "hardware_id": "runner"}, expect=403)
    api("POST", "/heartbeat", token=machine, json={"session_id": in_pool["session_id"]}, expect=200)
    assert "ci_seats" in api("POST", "/validate", token=machine, json={"license_key": pooled_key}, expect=200)
    api("GET", f"/admin/licenses/{pooled_id}", token=admin, expect=200)
    api("GET", f"/admin/licenses/{pooled_id}/sessions", token=admin, expect=200)
    api("POST", "/acquire", token=user, json={"license_key": pooled_key, "hardware_id": "hw"}, expect=201)
    waiting = api("POST", "/acquire", token=other, json={"license_key": pooled_key, "hardware_id": "hw", "wait": True},
                  expect=202)
    api("GET", f"/admin/licenses/{pooled_id}/queue", token=admin, expect=200)
    api("GET", f"/admin/licenses/{pooled_id}/queue", token=user, expect=403)
    api("DELETE", f"/admin/licenses/{pooled_id}/queue/{waiting['ticket']}", token=admin, expect=200)
    api("DELETE", f"/admin/licenses/{pooled_id}/queue/{waiting['ticket']}", token=admin, expect=200)
    api("DELETE", f"/admin/licenses/{pooled_id}/queue/nope", token=admin, expect=404)

    # conflict detection: thresholds, flags, acknowledgement (a flag is raised in tests/functions/test_anomalies.py)
    rules = api("PATCH", f"/admin/licenses/{pooled_id}", token=admin,
                json={"anomaly_rules": {"grants_per_user": {"max": 10, "window_s": 600}}}, expect=200)
    assert rules["license"]["anomaly_rules"]["grants_per_user"] == {"max": 10, "window_s": 600}
    api("PATCH", f"/admin/licenses/{pooled_id}", token=admin, json={"anomaly_rules": {"x": {}}}, expect=400)
    api("GET", "/admin/anomalies", token=admin, params={"state": "open"}, expect=200)
    api("GET", "/admin/anomalies", token=admin, params={"state": "closed"}, expect=400)
    api("GET", f"/admin/licenses/{pooled_id}/anomalies", token=admin, expect=200)
    api("GET", "/admin/licenses/lic_00000000000000000000/anomalies", token=admin, expect=404)
    flag = f"{pooled_id}.grants_per_user.{'0' * 20}"
    api("POST", f"/admin/anomalies/{flag}/acknowledge", token=admin, json={"note": "seen"}, expect=404)
    api("POST", f"/admin/anomalies/{flag}/acknowledge", token=admin, json={"note": ""}, expect=400)
    api("POST", "/acquire", token=other, json={"license_key": pooled_key, "hardware_id": "hw",
                                               "ticket": waiting["ticket"]}, expect=410)
    api("DELETE", f"/admin/keys/{made['key']['id']}", token=admin, expect=200)
    api("DELETE", f"/admin/keys/{made['key']['id']}", token=user, expect=403)
    api("DELETE", "/admin/keys/mk_00000000000000000000", token=admin, expect=404)
    validator = api("POST", "/admin/keys", token=admin, json={"name": "gate", "licenses": [pooled_id],
                                                              "mode": "validate"}, expect=201)["api_key"]
    api("POST", "/validate", token=validator, json={"license_key": pooled_key}, expect=200)
    api("POST", "/borrow", token=validator, json={"session_id": in_pool["session_id"], "duration_s": 60}, expect=403)
    api("POST", "/release", token=validator, json={"session_id": in_pool["session_id"]}, expect=403)
    api("POST", "/borrow/return", token=validator, json={"session_id": in_pool["session_id"]}, expect=403)

    # webhook endpoints
    hook = api("POST", "/admin/webhooks", token=admin, json={"url": "https://hooks.example.com/x",
                                                            "events": ["license.expiring"]}, expect=201)
    hook_path = f"/admin/webhooks/{hook['webhook']['id']}"
    api("POST", "/admin/webhooks", token=admin, json={"url": "https://u:p@hooks.example.com/x"}, expect=400)
    api("POST", "/admin/webhooks", token=user, json={"url": "https://hooks.example.com/x"}, expect=403)
    api("GET", "/admin/webhooks", token=admin, expect=200)
    api("GET", hook_path, token=admin, expect=200)
    api("GET", hook_path, token=id_token("x", role="admin", tenant="elsewhere"), expect=404)
    api("PATCH", hook_path, token=admin, json={"enabled": False}, expect=200)
    api("PATCH", hook_path, token=admin, json={"events": ["nope"]}, expect=400)
    api("POST", f"{hook_path}/test", token=admin, json={}, expect=200)  # (hooks.example.com: no answer)
    api("GET", f"{hook_path}/deliveries", token=admin, expect=200)
    api("GET", f"{hook_path}/deliveries", token=admin, params={"limit": "0"}, expect=400)
    api("POST", f"{hook_path}/rotate", token=admin, json={"overlap_s": 60}, expect=200)
    api("POST", f"{hook_path}/rotate", token=admin, json={"overlap_s": -1}, expect=400)
    api("DELETE", hook_path, token=admin, expect=200)
    api("DELETE", hook_path, token=admin, expect=404)
    mail = api("POST", "/admin/webhooks", token=admin, json={"url": "mailto:ops@hooks.example"}, expect=201)
    assert mail["secret"] is None and mail["webhook"]["events"] == ["license.expiring", "license.expired"]
    mail_path = f"/admin/webhooks/{mail['webhook']['id']}"
    api("POST", f"{mail_path}/test", token=admin, json={}, expect=200)  # the stack's SMTP relay
    api("POST", f"{mail_path}/rotate", token=admin, json={}, expect=400)
    api("PATCH", mail_path, token=admin, json={"url": "https://hooks.example.com/x"}, expect=400)
    api("POST", "/admin/webhooks", token=admin, json={"url": "mailto:ops@hooks.example?bcc=x@hooks.example"},
        expect=400)
    api("DELETE", mail_path, token=admin, expect=200)

    # the scheduler's functions
    api("POST", "/sweep", token=stack.scheduler_token(), expect=200)
    api("POST", "/sweep", token=user, expect=401)
    api("POST", "/sweep/expiry", token=stack.scheduler_token(), expect=200)
    api("POST", "/sweep/expiry", token=user, expect=401)
    api("POST", "/notify", token=stack.scheduler_token("notify"), expect=200)
    api("POST", "/notify", token=stack.scheduler_token("sweep"), expect=401)  # another function's audience

    # a signed statement of the month of the last closed hour (the sweep has closed one)
    through = api("GET", f"/admin/licenses/{pooled_id}/report", token=admin, expect=200)["through"]
    closed_month = (datetime.fromisoformat(through.replace("Z", "+00:00")) - timedelta(hours=1)).strftime("%Y-%m")
    api("GET", f"/admin/licenses/{pooled_id}/statement", token=admin, params={"month": closed_month}, expect=200)
    api("GET", f"/admin/licenses/{pooled_id}/statement", token=admin, params={"month": "2026-13"}, expect=400)

    # every operation of the spec was exercised (the spec cannot rot unnoticed)
    spec = yaml.safe_load(SPEC_PATH.read_text())
    operations = {(method, path) for path, item in spec["paths"].items() for method in item if method != "parameters"}
    exercised = {(m, _template(p, spec)) for m, p, _ in api.seen}
    assert operations <= exercised, operations - exercised


def _template(path: str, spec: dict) -> str:
    parts = path.strip("/").split("/")
    for template in spec["paths"]:
        pattern = template.strip("/").split("/")
        if len(pattern) == len(parts) and all(p.startswith("{") or p == q for p, q in zip(pattern, parts)):
            return template
    return path
