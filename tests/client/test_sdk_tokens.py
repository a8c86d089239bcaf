"""The SDK's offline verifier: the delegation chain, pinned roots, the certificate's bound,
tampering, wrong keys, the jwks cache."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hand_signed import Root, lease_claims, lease_token
from hand_signed import json_segment as _json
from hand_signed import public_jwk as _public_jwk
from hand_signed import segments as _segments
from hand_signed import sign_es256 as _sign_es256
from sdk_processes import run_cli

from coditect_license import JwksCache, LeaseOptions, License, TokenExpired, TokenInvalid, verify_lease_token
from coditect_license.tokens import keys_by_kid


@pytest.fixture
def issued(server, make_license, user):
    lic = make_license(seats=5, lease_ttl_s=60, offline_grace_s=30)
    lease = License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-tokens",
                    options=LeaseOptions(handle_signals=False)).acquire()
    jwks = httpx.get(f"{server}/jwks", timeout=10).json()
    yield lease, jwks
    lease.close()


def test_a_genuine_token_verifies_with_nothing_but_the_jwks(issued):
    lease, jwks = issued
    claims = verify_lease_token(lease.token, keys_by_kid(jwks), hardware_id="hw-tokens",
                                license_id=lease.license_id, issuer="https://license.coditect.dev")
    assert claims.session_id == lease.session_id and claims.grace_s == 30
    assert claims.valid_until == claims.expires_at + 30
    assert claims.uid and claims.tenant_id and claims.borrowed is False
    certificate = _segments(_segments(lease.token)[0]["dlg"])[1]
    assert isinstance(certificate["lease_max_s"], int)  # the server states its certificate's bound


def test_only_pinned_roots_are_used(issued, trusted_roots):
    lease, jwks = issued
    keys = keys_by_kid(jwks)
    assert verify_lease_token(lease.token, keys, trusted_roots=trusted_roots).session_id == lease.session_id
    with pytest.raises(TokenInvalid, match="not one of the trusted roots"):
        verify_lease_token(lease.token, keys, trusted_roots=[Root.new().kid])  # genuine, but not pinned
    # the pin is the key's own thumbprint: a key document calling another key by a pinned kid changes nothing
    impostor = Root.new().jwk
    with pytest.raises(TokenInvalid, match="not one of the trusted roots"):
        verify_lease_token(lease.token, {kid: {**impostor, "kid": kid} for kid in keys}, trusted_roots=trusted_roots)
    for malformed in ("one-string-not-a-list", ["not-a-thumbprint"], []):
        with pytest.raises(ValueError):
            verify_lease_token(lease.token, keys, trusted_roots=malformed)


def test_a_token_beyond_its_certificates_bound_is_refused():
    """exp + grace <= certificate exp + lease_max_s, exp >= iat; lease_max_s an integer >= 0."""
    root, now = Root.new(), int(time.time())
    keys = {root.kid: root.jwk}  # a root of this test's own, given as the anchor
    cert_exp = now + 3600

    def token(lease_max_s=600, **claims):
        fields = {"iat": now, "exp": cert_exp + 500, "grace": 100, **claims}
        return lease_token(root, lease_claims(**fields), cert_iat=now - 10, cert_exp=cert_exp,
                           lease_max_s=lease_max_s)

    assert verify_lease_token(token(), keys).valid_until == cert_exp + 600  # exactly at the bound
    with pytest.raises(TokenInvalid, match="exceeds its certificate's bound"):
        verify_lease_token(token(grace=101), keys)
    with pytest.raises(TokenInvalid, match="exceeds its certificate's bound"):  # a leaked delegate's ten-year lease
        verify_lease_token(token(exp=now + 10 * 365 * 86400), keys)
    with pytest.raises(TokenInvalid, match="expires before it was issued"):
        verify_lease_token(token(exp=now - 1, grace=0), keys, now=now - 2)
    without_bound = lease_token(root, lease_claims(iat=now, exp=now + 60), cert_iat=now - 10, cert_exp=cert_exp)
    with pytest.raises(TokenInvalid, match="malformed delegation certificate"):
        verify_lease_token(without_bound, keys)
    for malformed in (-1, True, "600", 600.5, None):
        with pytest.raises(TokenInvalid, match="malformed delegation certificate"):
            verify_lease_token(token(lease_max_s=malformed, exp=now + 60, grace=0), keys)


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


def test_the_jwks_cache_fetches_an_unknown_kid_once_then_works_offline(issued, server, sdk_dirs, trusted_roots):
    lease, jwks = issued
    fetches = []

    def fetch():
        fetches.append(1)
        return httpx.get(f"{server}/jwks", timeout=10).json()

    path = sdk_dirs[0] / "probe-jwks.json"
    cache = JwksCache(server, trusted_roots=trusted_roots, fetch=fetch, path=path)
    assert cache.verify(lease.token).session_id == lease.session_id
    assert cache.verify(lease.token) and len(fetches) == 1  # known now
    assert path.stat().st_mode & 0o777 == 0o600
    header, claims, sig = _segments(lease.token)
    cert_head, cert_claims, cert_sig = _segments(header["dlg"])

    def naming_root(kid):
        certificate = ".".join([_json({**cert_head, "kid": kid}), _json(cert_claims), cert_sig])
        return ".".join([_json({**header, "dlg": certificate}), _json(claims), sig])

    # a kid no pin names: rejected, and never worth a request
    eager = JwksCache(server, trusted_roots=trusted_roots, fetch=fetch, path=path, min_refetch_s=0)
    for _ in range(3):
        with pytest.raises(TokenInvalid, match="not one of the trusted roots"):
            eager.verify(naming_root("nope"))
    assert len(fetches) == 1
    # a pinned kid not held yet (the vendor pins a root version before the server rotates to it):
    # looked up, at most once per min_refetch_s (30 s)
    next_version = Root.new().kid
    rotating = JwksCache(server, trusted_roots=[*trusted_roots, next_version], fetch=fetch, path=path)
    for _ in range(3):
        with pytest.raises(TokenInvalid, match="not in the jwks"):
            rotating.verify(naming_root(next_version))
    assert len(fetches) == 2
    # a new process with no network: the file is enough, for the pinned keys
    assert JwksCache(server, trusted_roots=trusted_roots, path=path).verify(lease.token).session_id == lease.session_id
    # without pins the file is never read: keys come from the server, in this process, or not at all
    with pytest.raises(TokenInvalid, match="not in the jwks"):
        JwksCache(server, path=path).verify(lease.token)
    unpinned = JwksCache(server, path=sdk_dirs[0] / "unpinned-jwks.json", fetch=fetch)
    assert unpinned.verify(lease.token).session_id == lease.session_id and len(fetches) == 3
    assert not (sdk_dirs[0] / "unpinned-jwks.json").exists()


def test_a_cache_file_is_no_authority_on_time(server, sdk_dirs, trusted_roots):
    """A `fetched_at` in the future counts as now: the copy still ages and is refreshed."""
    published = httpx.get(f"{server}/jwks", timeout=10).json()
    now = time.time()
    path = sdk_dirs[0] / "future-jwks.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"fetched_at": now + 10 * 365 * 86400, "jwks": published}))
    clock = [now]
    fetches = []

    def fetch():
        fetches.append(clock[0])
        return published

    cache = JwksCache(server, trusted_roots=trusted_roots, fetch=fetch, path=path, max_age_s=3600,
                      clock=lambda: clock[0])
    assert cache.fetched_at == now
    assert cache.keys() and fetches == []  # fresh: read from the file
    clock[0] = now + 3601
    assert cache.keys() and fetches == [now + 3601]  # an hour later it is stale, whatever the file claimed


def test_cli_verify(issued, server, tmp_path, trusted_roots):
    lease, jwks = issued
    pins = {"CODITECT_TRUSTED_ROOTS": ",".join(trusted_roots)}
    ok = run_cli("verify", lease.token, "--server", server, "--json", env=pins)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["claims"]["session_id"] == lease.session_id

    head, body, sig = lease.token.split(".")
    tampered = run_cli("verify", f"{head}.{body}.{sig[::-1]}", "--server", server, env=pins)
    assert tampered.returncode == 18 and "token rejected" in tampered.stderr and "TOKEN_INVALID" in tampered.stderr

    wrong = tmp_path / "wrong-jwks.json"
    wrong.write_text(json.dumps({"keys": [_public_jwk(ec.generate_private_key(ec.SECP256R1()))]}))
    pinned = run_cli("verify", "-", "--jwks", str(wrong), input=lease.token)
    assert pinned.returncode == 18 and "not in the jwks" in pinned.stderr

    # "=": a thumbprint may start with "-", which argparse would take for an option
    flags = [f"--trusted-root={root}" for root in trusted_roots]
    human = run_cli("verify", lease.token, "--server", server, "--offline", *flags)  # the cache the first call filled
    assert human.returncode == 0 and "valid lease token" in human.stdout and lease.session_id in human.stdout
    assert time.time() < lease.claims.valid_until
