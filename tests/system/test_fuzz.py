"""Property-based fuzzing of every operation in openapi.yaml (schemathesis + hypothesis).

For each generated request: never a 5xx, the answer conforms to the spec, and a
rejected request (4xx) changes nothing: the fuzz tenant's licenses, audit events and a
fixture license's live leases are the same before and after.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from shared.seats import LicenseKeys

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
schema = schemathesis.openapi.from_path(str(SPEC_PATH))
EXAMPLES_PER_OPERATION = 25
calls: dict[str, int] = {}


@pytest.fixture(scope="module")
def target(function_server, id_token, rt, stack):
    tenant = f"fuzz-{secrets.token_hex(3)}"
    rt.provisioning.create_tenant("Fuzz", tenant_id=tenant, actor="tests")
    from shared.licensing.provisioning import LicenseSpec

    lic = rt.provisioning.create_license(LicenseSpec(tenant_id=tenant, max_seats=3), actor="tests").license
    tokens = {
        "user": id_token("fuzz-user"),
        "admin": id_token("fuzz-admin", role="admin", tenant=tenant),
        "owner": id_token("fuzz-owner", role="owner"),
    }

    def snapshot():
        return (
            sorted(lic.id for lic in rt.store.list_licenses(tenant_id=tenant, limit=500)),
            sorted(e.id for e in rt.store.list_events(tenant_id=tenant, license_id=None, limit=500)),
            sorted(rt.redis.zrange(LicenseKeys.of(lic.id).leases, 0, -1)),
        )

    return {"base_url": function_server.base_url, "tokens": tokens, "snapshot": snapshot, "stack": stack}


def _token_for(path: str, target) -> str:
    if path in ("/sweep", "/sweep/expiry", "/notify"):
        return target["stack"].scheduler_token(path.split("/")[1])  # each for its own function
    if path.startswith("/admin/tenants"):
        return target["tokens"]["owner"]
    if path.startswith("/admin"):
        return target["tokens"]["admin"]
    return target["tokens"]["user"]


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_5xx_and_rejections_change_nothing(case, target):
    before = target["snapshot"]()
    response = case.call(base_url=target["base_url"], headers={"Authorization": f"Bearer {_token_for(case.path, target)}"},
                         timeout=30)
    calls[f"{case.method} {case.path}"] = calls.get(f"{case.method} {case.path}", 0) + 1
    assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text)
    case.validate_response(response, checks=[response_schema_conformance])
    if 400 <= response.status_code < 500:
        assert target["snapshot"]() == before, (case.method, case.formatted_path, response.status_code)


def test_report_how_much_was_fuzzed():
    """Prints the cases per operation (read by the issue note); runs after the fuzz tests."""
    total = sum(calls.values())
    print(f"\nfuzzed {total} requests over {len(calls)} operations: " +
          ", ".join(f"{op} {n}" for op, n in sorted(calls.items())))
    assert total > 0
