"""Lease tokens from the real functions, checked by an independent verifier over jwks."""

from __future__ import annotations

import base64
import json
import time

import pytest

from lease_verifier import Rejected, verify_lease_token


@pytest.fixture
def issued(call, make_license):
    lic = make_license(seats=2, tier="pro", features=("build", "profile"), lease_ttl_s=120)
    status, body, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw-42"}, uid="alice")
    assert status == 201
    jwks = call("jwks", method="GET", uid=None)[1]
    return lic, body, jwks


def test_token_verifies_offline_and_carries_the_contract_claims(issued, rt):
    lic, body, jwks = issued
    claims = verify_lease_token(body["token"], jwks, now_s=int(time.time()))
    assert claims["sub"] == body["session_id"]
    assert claims["lic"] == lic.license_id and claims["ten"] == lic.tenant_id
    assert claims["uid"] == "alice" and claims["hw"] == "hw-42"
    assert claims["tier"] == "pro" and claims["features"] == ["build", "profile"]
    assert claims["iss"] == rt.settings.token_issuer
    assert claims["exp"] - claims["iat"] in (119, 120)  # = the lease, to the second


def test_tampered_claims_are_rejected(issued):
    _, body, jwks = issued
    header, payload, signature = body["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["features"].append("everything")
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Rejected, match="bad signature"):
        verify_lease_token(f"{header}.{forged}.{signature}", jwks, now_s=int(time.time()))


def test_token_is_rejected_past_its_exp(issued):
    _, body, jwks = issued
    claims = verify_lease_token(body["token"], jwks, now_s=int(time.time()))
    with pytest.raises(Rejected, match="expired"):
        verify_lease_token(body["token"], jwks, now_s=claims["exp"])


def test_token_is_rejected_against_someone_elses_jwks(issued):
    from cryptography.hazmat.primitives.asymmetric import ec

    from shared.tokens.jose import public_jwk

    _, body, jwks = issued
    stranger = public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())
    stranger["kid"] = jwks["keys"][0]["kid"]  # same kid, other key: must still fail
    with pytest.raises(Rejected):
        verify_lease_token(body["token"], {"keys": [stranger]}, now_s=int(time.time()))


def test_heartbeat_token_verifies_too(issued, call):
    _, body, jwks = issued
    beat = call("heartbeat", {"session_id": body["session_id"]}, uid="alice")[1]
    assert verify_lease_token(beat["token"], jwks, now_s=int(time.time()))["sub"] == body["session_id"]


def test_no_kms_call_per_acquire_or_heartbeat_in_steady_state(call, make_license, stack):
    lic = make_license(seats=50)
    call("acquire", {"license_key": lic.key, "hardware_id": "warm-up"})  # certificate ready
    before = stack.kms.sign_calls
    sessions = [call("acquire", {"license_key": lic.key, "hardware_id": f"hw-{i}"})[1]["session_id"] for i in range(40)]
    for sid in sessions:
        assert call("heartbeat", {"session_id": sid})[0] == 200
    assert stack.kms.sign_calls == before


def test_no_token_outlives_its_license(call, make_license, rt):
    """A lease (and its offline grace) signed shortly before the license expires ends with it."""
    expires_ms = rt.clock.now_ms() + 100_000
    lic = make_license(seats=1, lease_ttl_s=120, expires_ms=expires_ms, offline_grace_s=3600)
    status, body, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw-late"})
    assert status == 201
    jwks = call("jwks", method="GET", uid=None)[1]
    claims = verify_lease_token(body["token"], jwks, now_s=rt.clock.now_ms() // 1000)
    assert claims["exp"] <= expires_ms // 1000
    assert claims["exp"] + claims["grace"] <= expires_ms // 1000
