"""ID-token verification as in production: RS256, expiry, issuer, audience, signature."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth.firebase_tokens import FirebaseTokenVerifier
from shared.errors import Unauthenticated


@pytest.fixture
def verifier(google_certs, monkeypatch):
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)  # production mode
    return FirebaseTokenVerifier(google_certs.project_id, certs_url=google_certs.url, clock_skew_s=0)


def test_a_google_signed_token_yields_its_principal(verifier, google_certs):
    token = google_certs.sign("alice", tenant="acme", role="admin")
    principal = verifier.verify(token)
    assert (principal.uid, principal.email, principal.email_verified) == ("alice", "alice@example.com", True)
    assert (principal.tenant, principal.role) == ("acme", "admin")


def test_unknown_roles_are_ignored(verifier, google_certs):
    assert verifier.verify(google_certs.sign("bob", role="superuser")).role is None


@pytest.mark.parametrize(
    "case",
    ["expired", "wrong audience", "wrong issuer", "forged", "unknown kid", "emulator token", "garbage"],
)
def test_bad_tokens_are_unauthenticated(verifier, google_certs, stack, case):
    from devstack.dev_tokens import emulator_id_token

    now = int(time.time())
    token = {
        "expired": lambda: google_certs.sign(exp=now - 60, iat=now - 3660),
        "wrong audience": lambda: google_certs.sign(aud="someone-else"),
        "wrong issuer": lambda: google_certs.sign(iss="https://securetoken.google.com/someone-else"),
        "forged": lambda: google_certs.sign(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "unknown kid": lambda: google_certs.sign(kid="nope"),
        "emulator token": lambda: emulator_id_token(stack.project_id, "mallory"),
        "garbage": lambda: "a.b.c",
    }[case]()
    with pytest.raises(Unauthenticated):
        verifier.verify(token)


def test_a_remembered_token_is_still_refused_once_it_expires(verifier, google_certs, monkeypatch):
    now = time.time()
    token = google_certs.sign("dave", iat=int(now) - 100, exp=int(now) + 2)
    assert verifier.verify(token).uid == "dave"
    assert verifier.verify(token).uid == "dave"  # from the cache
    monkeypatch.setattr(time, "time", lambda: now + 3)
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(token)
