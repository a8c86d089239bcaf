"""Smoke tests: is a deployment (or the local stack) alive and doing its one job?

Run against any environment: SMOKE_BASE_URL=... SMOKE_ADMIN_TOKEN=... SMOKE_USER_TOKEN=...
.venv/bin/python -m pytest tests/smoke. Each run makes its own uniquely named license
(google-cloud-testutils' prefixer) and revokes it at the end; calls are retried briefly
for cold starts (its retry helpers), never for wrong answers.
"""

from __future__ import annotations

import httpx
import pytest
from test_utils.prefixer import Prefixer
from test_utils.retry import RetryErrors, RetryResult

PREFIX = Prefixer("license-server", "tests/smoke").create_prefix()
_cold_start = RetryErrors(httpx.TransportError, max_tries=5, delay=1, backoff=2)
_until_ready = RetryResult(lambda response: response.status_code == 200, max_tries=5, delay=1, backoff=2)


def _get(target, path, **kwargs):
    return _cold_start(httpx.get)(target.url(path), timeout=30, **kwargs)


def _post(target, path, token=None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return _cold_start(httpx.post)(target.url(path), headers=headers, timeout=30, **kwargs)


def test_health_and_readiness(smoke_target):
    assert _get(smoke_target, "health").json() == {"status": "ok"}
    ready = _until_ready(lambda: _get(smoke_target, "health/ready"))()
    assert ready.json()["checks"] == {"redis": "ok", "firestore": "ok"}


def test_jwks_publishes_signing_keys(smoke_target):
    answer = _get(smoke_target, "jwks")
    assert answer.status_code == 200 and answer.json()["keys"]
    assert "max-age" in answer.headers["Cache-Control"]


@pytest.mark.parametrize("name", ["acquire", "heartbeat", "release", "validate"])
def test_seat_functions_demand_a_token(smoke_target, name):
    answer = _post(smoke_target, name, json={})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "UNAUTHENTICATED"


def test_acquire_heartbeat_release_walk(smoke_target):
    owner = {"Authorization": f"Bearer {smoke_target.owner_token}"}
    tenant = _cold_start(httpx.post)(smoke_target.url("admin/tenants"), headers=owner, timeout=30,
                                     json={"id": smoke_target.tenant, "name": "Smoke tests"})
    assert tenant.status_code in (201, 409), tenant.text
    created = _cold_start(httpx.post)(smoke_target.url("admin/licenses"), headers=owner, timeout=30,
                                      json={"tenant": smoke_target.tenant, "max_seats": 1, "tier": "smoke",
                                            "features": [PREFIX]})
    assert created.status_code == 201, created.text
    license_id, key = created.json()["license"]["id"], created.json()["license_key"]
    try:
        acquired = _post(smoke_target, "acquire", smoke_target.user_token,
                         json={"license_key": key, "hardware_id": f"{PREFIX}-hw"})
        assert acquired.status_code == 201, acquired.text
        session = {"session_id": acquired.json()["session_id"]}
        assert _post(smoke_target, "heartbeat", smoke_target.user_token, json=session).json()["status"] == "ok"
        assert _post(smoke_target, "release", smoke_target.user_token, json=session).json() == {"status": "released"}
    finally:
        revoked = _cold_start(httpx.delete)(smoke_target.url(f"admin/licenses/{license_id}"), headers=owner, timeout=30)
        assert revoked.status_code == 200
