"""scripts/licensectl (over the admin function) and scripts/dev-token, run as an operator would."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(tool: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "scripts" / tool), *args], env=env or dict(os.environ),
                          capture_output=True, text=True, timeout=120)


def test_licensectl_walks_an_operator_through_a_stuck_seat(function_server, stack, id_token, call):
    owner = ["--base-url", function_server.base_url, "--token", id_token("root", role="owner")]
    tenant_id = f"cli-{secrets.token_hex(3)}"

    tenant = run("licensectl", *owner, "create-tenant", "CLI Corp", "--id", tenant_id, "--json")
    assert tenant.returncode == 0, tenant.stderr and json.loads(tenant.stdout)["id"] == tenant_id
    created = run("licensectl", *owner, "create-license", "--tenant", tenant_id, "--seats", "1", "--tier", "pro",
                  "--features", "a,b", "--expires", "2099-01-01T00:00:00Z", "--lease-ttl", "120", "--json")
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    lic = issued["license"]
    assert (lic["max_seats"], lic["lease_ttl_s"], lic["heartbeat_interval_s"]) == (1, 120, 100)
    assert lic["expires_at"] == "2099-01-01T00:00:00.000Z" and lic["features"] == ["a", "b"]

    # a tenant admin (not the owner) sees the holder and frees the seat
    admin = ["--base-url", function_server.base_url, "--token", id_token("ops", role="admin", tenant=tenant_id)]
    status, body, _ = call("acquire", {"license_key": issued["license_key"], "hardware_id": "stuck"}, uid="away")
    assert status == 201
    holders = run("licensectl", *admin, "holders", lic["id"])
    assert holders.returncode == 0 and "1 of 1 seats in use" in holders.stdout and body["session_id"] in holders.stdout
    freed = run("licensectl", *admin, "force-release", lic["id"], body["session_id"])
    assert freed.returncode == 0 and "released" in freed.stdout
    assert call("acquire", {"license_key": issued["license_key"], "hardware_id": "mine"}, uid="me")[0] == 201
    events = run("licensectl", *admin, "events", "--license", lic["id"], "--json")
    assert "force-release" in [e["type"] for e in json.loads(events.stdout)["events"]]


def test_licensectl_reports_errors_plainly(function_server, id_token):
    admin = ["--base-url", function_server.base_url, "--token", id_token("ops", role="admin", tenant="some-tenant")]
    missing = run("licensectl", *admin, "holders", "lic_00000000000000000000")
    bad = run("licensectl", *admin, "create-license", "--tenant", "some-tenant", "--seats", "0")
    unauthenticated = run("licensectl", "--base-url", function_server.base_url, "--token", "junk", "licenses")
    assert missing.returncode == 1 and "404 NOT_FOUND" in missing.stderr
    assert bad.returncode == 1 and "max_seats" in bad.stderr
    assert unauthenticated.returncode == 1 and "401 UNAUTHENTICATED" in unauthenticated.stderr


def test_dev_token_mints_a_token_the_local_stack_accepts(stack, call, make_license):
    result = run("dev-token", "--uid", "dora", "--tenant", "acme", "--role", "admin", "--project", stack.project_id)
    assert result.returncode == 0, result.stderr
    lic = make_license()
    status, _, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, token=result.stdout.strip())
    assert status == 201
