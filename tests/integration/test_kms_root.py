"""The KMS root adapter through the real google-cloud-kms client and a gRPC stand-in."""

from __future__ import annotations

import time

import jwt
import pytest
from lease_verifier import Rejected, verify_lease_token

from devstack.kms_standin import KmsStandIn
from shared.clock import ManualClock
from shared.domain import LEASE_TOKEN_MAX_S
from shared.errors import KmsIntegrityError
from shared.tokens import DelegatedSigner, KmsRootSigner
from shared.tokens.delegation import TokenBeyondCertificate
from shared.tokens.kms_root import kms_client

KEY = "projects/p/locations/global/keyRings/r/cryptoKeys/root"


@pytest.fixture
def kms():
    with KmsStandIn() as standin:
        yield standin


def make_signer(kms, algorithm="EC_SIGN_P256_SHA256", clock=None):
    kms.create_key(KEY, algorithm)
    clock = clock or ManualClock(start_ms=int(time.time() * 1000))
    root = KmsRootSigner(kms_client(kms.address), KEY, clock, version_refresh_s=60)
    return root, DelegatedSigner(root, clock, issuer="test", ttl_s=3600, lease_max_s=LEASE_TOKEN_MAX_S), clock


def lease(signer, clock, **extra):
    now = clock.now_ms() // 1000
    return signer.sign_lease({"sub": "s", "iat": now, "exp": now + 300, **extra})


@pytest.mark.parametrize("algorithm, alg", [("EC_SIGN_P256_SHA256", "ES256"), ("RSA_SIGN_PKCS1_4096_SHA256", "RS256")])
def test_root_algorithms_produce_verifiable_chains(kms, algorithm, alg):
    root, signer, clock = make_signer(kms, algorithm)
    [jwk] = root.public_jwks()
    assert jwk["alg"] == alg
    verify_lease_token(lease(signer, clock), {"keys": [jwk]}, now_s=clock.now_ms() // 1000)


def test_the_certificate_bounds_what_its_delegate_may_sign(kms):
    root, signer, clock = make_signer(kms)
    jwks, now = {"keys": root.public_jwks()}, clock.now_ms() // 1000
    certificate = jwt.decode(jwt.get_unverified_header(lease(signer, clock))["dlg"], options={"verify_signature": False})
    assert certificate["lease_max_s"] == LEASE_TOKEN_MAX_S
    bound = certificate["exp"] + LEASE_TOKEN_MAX_S
    # The signer makes nothing past the bound (ten years out, or exp + grace one second over).
    with pytest.raises(TokenBeyondCertificate):
        signer.sign_lease({"sub": "s", "iat": now, "exp": now + 10 * 365 * 86_400})
    with pytest.raises(TokenBeyondCertificate):
        signer.sign_lease({"sub": "s", "iat": now, "exp": bound - 100, "grace": 101})
    verify_lease_token(signer.sign_lease({"sub": "s", "iat": now, "exp": bound - 100, "grace": 100}), jwks, now_s=now)
    # A token made with the delegate key directly (a leaked key) is refused by verifiers.
    delegate = signer._delegate
    headers = {"typ": "lease+jwt", "kid": delegate.kid, "dlg": delegate.certificate}
    forged = jwt.encode({"sub": "s", "iat": now, "exp": bound, "grace": 1}, delegate.private_key, algorithm="ES256",
                        headers=headers)
    with pytest.raises(Rejected, match="beyond what its certificate allows"):
        verify_lease_token(forged, jwks, now_s=now)


def test_one_kms_call_per_certificate_not_per_token(kms):
    _, signer, clock = make_signer(kms)
    for _ in range(100):
        lease(signer, clock)
    assert kms.sign_calls == 1
    clock.advance(seconds=3600 - 300)  # inside the renewal margin: a new certificate
    lease(signer, clock)
    assert kms.sign_calls == 2


def test_a_corrupted_signature_is_retried_once(kms):
    root, signer, clock = make_signer(kms)
    kms.corrupt_next_signatures(1)
    token = lease(signer, clock)
    verify_lease_token(token, {"keys": root.public_jwks()}, now_s=clock.now_ms() // 1000)
    assert kms.sign_calls == 2


def test_a_signature_corrupted_twice_is_an_integrity_error(kms):
    _, signer, clock = make_signer(kms)
    kms.corrupt_next_signatures(2)
    with pytest.raises(KmsIntegrityError) as caught:
        lease(signer, clock)
    assert caught.value.http_status == 503


def test_a_corrupted_public_key_is_refetched_or_refused(kms):
    kms.create_key(KEY)
    clock = ManualClock()
    kms.corrupt_next_public_keys(1)
    assert KmsRootSigner(kms_client(kms.address), KEY, clock).public_jwks()  # retried once
    kms.corrupt_next_public_keys(2)
    with pytest.raises(KmsIntegrityError):
        KmsRootSigner(kms_client(kms.address), KEY, clock).public_jwks()


def test_rotation_publishes_both_roots_and_signs_with_the_new_one(kms):
    root, signer, clock = make_signer(kms)
    issued_s = clock.now_ms() // 1000
    old_token = lease(signer, clock)
    [old_root] = root.public_jwks()

    kms.rotate(KEY)
    clock.advance(seconds=3600)  # past the version refresh and the old certificate
    jwks = {"keys": root.public_jwks()}
    new_token = lease(signer, clock)

    assert [k["kid"] for k in jwks["keys"]][0] == old_root["kid"] and len(jwks["keys"]) == 2
    assert root.current_key()[0] == jwks["keys"][1]["kid"]
    now = clock.now_ms() // 1000
    verify_lease_token(new_token, jwks, now_s=now)
    # a token rooted in the old version still verifies (at a time it was valid)
    # for as long as the old version is published
    verify_lease_token(old_token, jwks, now_s=issued_s)

    kms.disable(f"{KEY}/cryptoKeyVersions/1")  # retired once its tokens have expired
    clock.advance(seconds=61)
    assert [k["kid"] for k in root.public_jwks()] == [jwks["keys"][1]["kid"]]


def test_an_unreachable_kms_is_503_within_the_call_timeout():
    # The client's default retry would keep going for a minute, then raise RetryError,
    # which is not a GoogleAPICallError: untranslated, that was a 500 after ~45 s.
    from devstack.processes import free_port
    from shared.clock import SystemClock
    from shared.errors import BackendUnavailable

    root = KmsRootSigner(kms_client(f"127.0.0.1:{free_port()}"), KEY, SystemClock(), timeout_s=1)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        root.public_jwks()
    assert time.monotonic() - started < 20  # not the default retry's minute
