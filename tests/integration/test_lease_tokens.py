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


# -- the service checking its own tokens (a restored lease's proof after a Redis loss) -------

def test_the_service_accepts_its_own_valid_token_as_proof_of_that_session_only(issued, rt):
    _, body, _ = issued
    checker, now_s = rt.lease_checker, int(time.time())
    assert checker.proves_lease(body["token"], session_id=body["session_id"], now_s=now_s)
    assert not checker.proves_lease(body["token"], session_id=body["session_id"] + "x", now_s=now_s)
    exp = verify_lease_token(body["token"], {"keys": rt.root_signer.public_jwks()}, now_s=now_s)["exp"]
    assert not checker.proves_lease(body["token"], session_id=body["session_id"], now_s=exp)  # the lease ended


@pytest.mark.parametrize("forgery", ["claims", "self-signed delegate", "garbage"])
def test_a_forged_token_proves_nothing(issued, rt, forgery):
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    _, body, _ = issued
    header, payload, signature = body["token"].split(".")
    if forgery == "claims":
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["exp"] += 86_400
        token = f"{header}.{base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b'=').decode()}.{signature}"
    elif forgery == "self-signed delegate":
        # a certificate of the attacker's own key, "signed" by itself under the root's kid
        key = ec.generate_private_key(ec.SECP256R1())
        cert_header = jwt.get_unverified_header(jwt.get_unverified_header(body["token"])["dlg"])
        from shared.tokens.jose import public_jwk

        jwk = public_jwk(key.public_key())
        certificate = jwt.encode({"iss": rt.settings.token_issuer, "sub": jwk["kid"], "jwk": jwk, "iat": 0,
                                  "exp": 4_000_000_000, "lease_max_s": 10**9}, key, algorithm="ES256",
                                 headers={"kid": cert_header["kid"], "typ": "dlg+jwt"})
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        token = jwt.encode(claims, key, algorithm="ES256",
                           headers={"typ": "lease+jwt", "kid": jwk["kid"], "dlg": certificate})
    else:
        token = "a.b.c"
    assert not rt.lease_checker.proves_lease(token, session_id=body["session_id"], now_s=int(time.time()))
