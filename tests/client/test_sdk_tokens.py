"""The SDK's offline verifier: the delegation chain, tampering, wrong keys, the jwks cache."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from sdk_helpers import run_cli

from coditect_license import JwksCache, License, TokenExpired, TokenInvalid, verify_lease_token
from coditect_license.tokens import jwk_thumbprint, keys_by_kid


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(value) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _segments(token):
    head, body, sig = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(head))), json.loads(base64.urlsafe_b64decode(pad(body))), sig


def _sign_es256(key, header, claims) -> str:
    signing_input = f"{_json(header)}.{_json(claims)}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _public_jwk(key):
    numbers = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": _b64(numbers.x.to_bytes(32, "big")),
           "y": _b64(numbers.y.to_bytes(32, "big"))}
    return {**jwk, "kid": jwk_thumbprint(jwk), "alg": "ES256", "use": "sig"}


@pytest.fixture
def issued(server, make_license, user):
    lic = make_license(seats=5, lease_ttl_s=60, offline_grace_s=30)
    lease = License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-tokens",
                    handle_signals=False).acquire()
    jwks = httpx.get(f"{server}/jwks", timeout=10).json()
    yield lease, jwks
    lease.close()


def test_a_genuine_token_verifies_with_nothing_but_the_jwks(issued):
    lease, jwks = issued
    claims = verify_lease_token(lease.token, keys_by_kid(jwks), hardware_id="hw-tokens",
                                license_id=lease.license_id, issuer="https://license.coditect.dev")
    assert claims.session_id == lease.session_id and claims.grace_s == 30 and claims.valid_until == claims.expires_at + 30
    assert claims.uid and claims.tenant_id and claims.borrowed is False


def test_tampered_tokens_are_rejected(issued):
    lease, jwks = issued
    keys = keys_by_kid(jwks)
    header, claims, signature = _segments(lease.token)
    head_b64, body_b64, _ = lease.token.split(".")
    attacker = ec.generate_private_key(ec.SECP256R1())

    forged = {
        # claims changed, signature kept
        "more features": f"{head_b64}.{_json({**claims, 'features': ['everything']})}.{signature}",
        "longer lease": f"{head_b64}.{_json({**claims, 'exp': claims['exp'] + 86400})}.{signature}",
        "more grace": f"{head_b64}.{_json({**claims, 'grace': 10 ** 6})}.{signature}",
        # a signature bit flipped
        "flipped bit": f"{head_b64}.{body_b64}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}",
        # re-signed by a key the root never certified, keeping the real certificate
        "uncertified key": _sign_es256(attacker, {**header, "kid": _public_jwk(attacker)["kid"]}, claims),
        # a certificate of the attacker's own, naming the real root kid
        "self-made certificate": _sign_es256(attacker, {
            **header, "kid": _public_jwk(attacker)["kid"],
            "dlg": _sign_es256(attacker, {"alg": "ES256", "kid": next(iter(keys)), "typ": "dlg+jwt"},
                               {"iss": claims["iss"], "sub": _public_jwk(attacker)["kid"],
                                "jwk": _public_jwk(attacker), "iat": claims["iat"] - 1, "exp": claims["iat"] + 3600}),
        }, claims),
        "alg none": f"{_json({**header, 'alg': 'none'})}.{body_b64}.",
        "not a lease token": f"{_json({**header, 'typ': 'JWT'})}.{body_b64}.{signature}",
        "garbage": "not.a.token",
    }
    for name, token in forged.items():
        with pytest.raises(TokenInvalid) as rejected:
            verify_lease_token(token, keys)
        assert not isinstance(rejected.value, TokenExpired), name
    # and a genuine token bound to another machine or license
    with pytest.raises(TokenInvalid, match="another machine"):
        verify_lease_token(lease.token, keys, hardware_id="someone-elses-laptop")
    with pytest.raises(TokenInvalid, match="another license"):
        verify_lease_token(lease.token, keys, license_id="lic_other")


def test_a_wrong_jwks_is_rejected(issued):
    lease, jwks = issued
    real_kid = next(iter(keys_by_kid(jwks)))
    impostor = _public_jwk(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(TokenInvalid, match="bad signature"):
        verify_lease_token(lease.token, {real_kid: {**impostor, "kid": real_kid}})  # other key, same kid
    with pytest.raises(TokenInvalid, match="not in the jwks"):
        verify_lease_token(lease.token, {impostor["kid"]: impostor})
    with pytest.raises(TokenInvalid, match="not in the jwks"):
        verify_lease_token(lease.token, {})


def test_expiry_is_exp_plus_grace_with_the_stated_clock_skew(issued):
    lease, jwks = issued
    keys = keys_by_kid(jwks)
    until = lease.claims.valid_until
    assert verify_lease_token(lease.token, keys, now=until - 1, leeway_s=0)
    assert verify_lease_token(lease.token, keys, now=until + 59)  # default tolerance: 60 s
    with pytest.raises(TokenExpired):
        verify_lease_token(lease.token, keys, now=until + 60)
    with pytest.raises(TokenInvalid, match="future"):
        verify_lease_token(lease.token, keys, now=lease.claims.issued_at - 61)


def test_the_jwks_cache_fetches_an_unknown_kid_once_then_works_offline(issued, server, sdk_dirs):
    lease, jwks = issued
    fetches = []

    def fetch():
        fetches.append(1)
        return httpx.get(f"{server}/jwks", timeout=10).json()

    path = sdk_dirs[0] / "probe-jwks.json"
    cache = JwksCache(server, fetch=fetch, path=path)
    assert cache.verify(lease.token).session_id == lease.session_id
    assert cache.verify(lease.token) and len(fetches) == 1  # known now
    assert path.stat().st_mode & 0o777 == 0o600
    # a token naming a kid nobody published: rejected; no refetch within min_refetch_s (30 s) of the last
    header, claims, sig = _segments(lease.token)
    cert_head, cert_claims, cert_sig = _segments(header["dlg"])
    bad_certificate = ".".join([_json({**cert_head, "kid": "nope"}), _json(cert_claims), cert_sig])
    unknown = ".".join([_json({**header, "dlg": bad_certificate}), _json(claims), sig])
    for _ in range(3):
        with pytest.raises(TokenInvalid, match="not in the jwks"):
            cache.verify(unknown)
    assert len(fetches) == 1
    eager = JwksCache(server, fetch=fetch, path=path, min_refetch_s=0)
    with pytest.raises(TokenInvalid, match="not in the jwks"):
        eager.verify(unknown)
    assert len(fetches) == 2  # an unknown kid is looked up (key rotation) once allowed
    # a new process with no network: the file is enough
    assert JwksCache(server, path=path).verify(lease.token).session_id == lease.session_id


def test_cli_verify(issued, server, tmp_path):
    lease, jwks = issued
    ok = run_cli("verify", lease.token, "--server", server, "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["claims"]["session_id"] == lease.session_id

    head, body, sig = lease.token.split(".")
    tampered = run_cli("verify", f"{head}.{body}.{sig[::-1]}", "--server", server)
    assert tampered.returncode == 18 and "token rejected" in tampered.stderr and "TOKEN_INVALID" in tampered.stderr

    wrong = tmp_path / "wrong-jwks.json"
    wrong.write_text(json.dumps({"keys": [_public_jwk(ec.generate_private_key(ec.SECP256R1()))]}))
    pinned = run_cli("verify", "-", "--jwks", str(wrong), input=lease.token)
    assert pinned.returncode == 18 and "not in the jwks" in pinned.stderr

    human = run_cli("verify", lease.token, "--server", server, "--offline")  # the cache the first call filled
    assert human.returncode == 0 and "valid lease token" in human.stdout and lease.session_id in human.stdout
    assert time.time() < lease.claims.valid_until
