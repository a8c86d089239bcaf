"""validate, health, jwks."""

from __future__ import annotations

import pytest


def test_validate_reports_valid_with_seat_counts(call, make_license):
    lic = make_license(seats=2, tier="team")
    call("acquire", {"license_key": lic.key, "hardware_id": "hw"})
    status, body, _ = call("validate", {"license_key": lic.key})
    assert status == 200
    assert body == {
        "valid": True, "code": "VALID", "seats": {"used": 1, "max": 2},
        "license": {"id": lic.license_id, "tier": "team", "features": [], "expires_at": None},
    }


@pytest.mark.parametrize(
    "fields, code",
    [({"suspended": True}, "SUSPENDED"), ({"expires_ms": 1_000}, "EXPIRED")],
)
def test_validate_reports_unusable_licenses(call, make_license, fields, code):
    lic = make_license(**fields)
    status, body, _ = call("validate", {"license_key": lic.key})
    assert status == 200 and body["valid"] is False and body["code"] == code


def test_validate_reports_a_full_license(call, make_license):
    lic = make_license(seats=1)
    call("acquire", {"license_key": lic.key, "hardware_id": "hw"})
    body = call("validate", {"license_key": lic.key})[1]
    assert body["valid"] is False and body["code"] == "NO_SEAT_AVAILABLE" and body["seats"] == {"used": 1, "max": 1}


def test_validate_unknown_key_is_404(call):
    status, body, _ = call("validate", {"license_key": "CDT-0000"})
    assert status == 404 and body["error"]["code"] == "LICENSE_NOT_FOUND"


def test_health_is_public_and_touches_no_backend(call):
    assert call("health", method="GET", uid=None)[:2] == (200, {"status": "ok"})


def test_ready_checks_redis_and_firestore(call):
    status, body, _ = call("health", method="GET", path="/ready", uid=None)
    assert status == 200 and body == {"status": "ok", "checks": {"redis": "ok", "firestore": "ok"}}


def test_ready_is_503_naming_the_failing_backend(call, rt):
    from dataclasses import replace

    from devstack.processes import free_port
    from shared.runtime import Runtime, install_runtime

    install_runtime(Runtime(replace(rt.settings, redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout_s=0.3)))
    try:
        status, body, headers = call("health", method="GET", path="/ready", uid=None)
    finally:
        install_runtime(rt)
    assert status == 503 and body["checks"] == {"redis": "unavailable", "firestore": "ok"}
    assert body["error"]["code"] == "UNAVAILABLE" and "redis" in body["error"]["message"]
    assert headers["Retry-After"]


@pytest.mark.parametrize("name", ["health", "jwks"])
def test_public_functions_answer_only_get(call, name):
    status, body, headers = call(name, {}, method="POST", uid=None)
    assert status == 405 and headers["Allow"] == "GET, HEAD"


def test_health_unknown_route_is_404(call):
    assert call("health", method="GET", path="/live-ish", uid=None)[0] == 404


def test_jwks_publishes_the_root_public_key_cacheably(call):
    status, body, headers = call("jwks", method="GET", uid=None)
    assert status == 200
    [key] = body["keys"]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256" and key["kid"]
    assert "d" not in key  # public half only
    assert headers["Cache-Control"].startswith("public, max-age=")
