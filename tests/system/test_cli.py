"""scripts/licensectl and scripts/dev-token, run as an operator would."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(tool: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "scripts" / tool), *args], env=env, capture_output=True, text=True, timeout=120)


def test_licensectl_creates_a_tenant_and_a_license_whose_key_works(stack, call):
    env = {**os.environ, **stack.env}
    tenant_id = f"cli-{secrets.token_hex(3)}"

    tenant = run("licensectl", "create-tenant", "CLI Corp", "--id", tenant_id, "--json", env=env)
    lic = run("licensectl", "create-license", "--tenant", tenant_id, "--seats", "2", "--tier", "pro",
              "--features", "a,b", "--expires", "2099-01-01T00:00:00Z", "--lease-ttl", "120", "--json", env=env)

    assert tenant.returncode == 0, tenant.stderr
    assert json.loads(tenant.stdout)["tenant"]["id"] == tenant_id
    assert lic.returncode == 0, lic.stderr
    issued = json.loads(lic.stdout)
    assert issued["license"]["max_seats"] == 2 and issued["license"]["lease_ttl_s"] == 120
    assert issued["license"]["heartbeat_interval_s"] == 100
    assert issued["license"]["expires_at"] == "2099-01-01T00:00:00.000Z"
    status, body, _ = call("acquire", {"license_key": issued["license_key"], "hardware_id": "hw"})
    assert status == 201 and body["license"]["features"] == ["a", "b"]


def test_licensectl_reports_errors_plainly(stack):
    env = {**os.environ, **stack.env}
    missing = run("licensectl", "create-license", "--tenant", "no-such-tenant", "--seats", "1", env=env)
    bad = run("licensectl", "create-license", "--tenant", "x", "--seats", "1", "--expires", "tomorrow", env=env)
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr
    assert bad.returncode != 0 and "--expires" in bad.stderr


def test_dev_token_mints_a_token_the_local_stack_accepts(stack, call, make_license):
    result = run("dev-token", "--uid", "dora", "--tenant", "acme", "--role", "admin", "--project", stack.project_id,
                 env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    lic = make_license()
    status, _, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, token=result.stdout.strip())
    assert status == 201
