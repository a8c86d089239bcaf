"""Served functions read Redis's AUTH string and CA from Secret Manager, fail closed when
either is wrong, and recover once the secret is rotated to the right value (no restart)."""

from __future__ import annotations

import time

import httpx
import pytest

from devstack.local_ca import LocalCa
from devstack.redis_server import RedisEndpoint
from shared.seats import LicenseKeys

PROJECT = "demo-coditect"


def _wait_ready(base_url: str, timeout_s: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        answer = httpx.get(f"{base_url}/health/ready", timeout=10)
        if answer.status_code == 200 or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)


@pytest.mark.parametrize("wrong", ["auth", "ca"])
def test_a_wrong_redis_secret_fails_closed_and_its_rotation_recovers(stack, make_license, id_token, tmp_path, wrong):
    redis: RedisEndpoint = stack.redis
    right = {"auth": redis.password, "ca": redis.ca_pem}
    bad = {"auth": "a-rotated-away-auth-string", "ca": LocalCa("an untrusted CA").pem}[wrong]
    names = {kind: stack.secret_manager.put(PROJECT, f"secrets-test-{wrong}-{kind}",
                                            bad if kind == wrong else right[kind]) for kind in ("auth", "ca")}
    server = stack.serve_functions(workers=1, threads=4, log_path=tmp_path / "functions.log", extra_env={
        "REDIS_AUTH_SECRET": names["auth"], "REDIS_CA_SECRET": names["ca"]})
    try:
        lic = make_license(seats=1)
        acquire = {"json": {"license_key": lic.key, "hardware_id": "hw"},
                   "headers": {"Authorization": f"Bearer {id_token('secrets-user')}"}, "timeout": 30}

        ready = httpx.get(f"{server.base_url}/health/ready", timeout=30)
        assert ready.status_code == 503 and ready.json()["checks"]["redis"] == "unavailable"
        refused = httpx.post(f"{server.base_url}/acquire", **acquire)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "UNAVAILABLE"
        assert "Retry-After" in refused.headers
        assert stack.redis.client().zcard(LicenseKeys.of(lic.license_id).leases) == 0  # nothing granted

        stack.secret_manager.put(PROJECT, f"secrets-test-{wrong}-{wrong}", right[wrong])  # the rotation
        assert _wait_ready(server.base_url).status_code == 200
        granted = httpx.post(f"{server.base_url}/acquire", **acquire)
        assert granted.status_code == 201, granted.text
    finally:
        server.stop()
    log = (tmp_path / "functions.log").read_text()
    assert right["auth"] not in log and "a-rotated-away-auth-string" not in log  # never logged
