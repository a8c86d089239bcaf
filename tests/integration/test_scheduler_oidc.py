"""Cloud Scheduler's OIDC tokens, as the sweep's verifier takes them (issue 12).

Deployed, Cloud Run checks the scheduler's token itself and hands it to the container with
its signature replaced by SIGNATURE_REMOVED_BY_GOOGLE; locally the token keeps its
signature. The verifier against a local server publishing certificates as Google does:
the forwarded form is accepted only with SCHEDULER_TRUST_PLATFORM_AUTH=1, its claims are still
checked, a signature present is always verified, and nothing malformed gets past 401.
(Over HTTP, through the sweep function: tests/functions/test_sweep.py.)
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.google_certs import LocalGoogleCerts
from shared.auth.scheduler_oidc import REMOVED_SIGNATURE, SchedulerTokenVerifier
from shared.config import ConfigError, Settings
from shared.errors import Forbidden, Unauthenticated
from shared.runtime import Runtime

AUDIENCE = "https://prod-sweep-123456789.europe-west1.run.app"
ACCOUNT = "prod-sweep-scheduler@coditect-prod.iam.gserviceaccount.com"
SKEW_S = 10


@pytest.fixture(scope="module")
def certs():
    server = LocalGoogleCerts()
    yield server
    server.stop()


def verifier(certs, *, trust: bool) -> SchedulerTokenVerifier:
    return SchedulerTokenVerifier(audience=AUDIENCE, service_account=ACCOUNT, certs_url=certs.url,
                                  clock_skew_s=SKEW_S, trust_platform_auth=trust)


def signed(certs, **overrides) -> str:
    return certs.scheduler_token(audience=AUDIENCE, email=ACCOUNT, **overrides)


def forwarded(token: str) -> str:
    """What Cloud Run passes to the container once it has checked `token`."""
    header, claims, _signature = token.split(".")
    return f"{header}.{claims}.{REMOVED_SIGNATURE}"


def segment(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(claims: object) -> str:
    return f"{segment({'alg': 'RS256', 'kid': 'k', 'typ': 'JWT'})}.{segment(claims)}.{REMOVED_SIGNATURE}"


def claims(**overrides) -> dict:
    now = int(time.time())
    return {"iss": "https://accounts.google.com", "aud": AUDIENCE, "sub": "1", "email": ACCOUNT,
            "email_verified": True, "iat": now, "exp": now + 3600, **overrides}


# -- the setting -------------------------------------------------------------------------

@pytest.mark.parametrize("value, trusted", [(None, False), ("", False), ("0", False), ("1", True)])
def test_the_setting_is_read_from_scheduler_trust_platform_auth(value, trusted):
    env = {} if value is None else {"SCHEDULER_TRUST_PLATFORM_AUTH": value}
    assert Settings.from_env(env).scheduler_trust_platform_auth is trusted


@pytest.mark.parametrize("value", ["yes", "true", "2", "on"])
def test_anything_but_0_or_1_fails_at_start(value):
    with pytest.raises(ConfigError, match="SCHEDULER_TRUST_PLATFORM_AUTH"):
        Settings.from_env({"SCHEDULER_TRUST_PLATFORM_AUTH": value})


@pytest.mark.parametrize("trust", [False, True])
def test_the_runtimes_verifier_follows_the_setting(certs, trust):
    settings = Settings.from_env({"SWEEP_AUDIENCE": AUDIENCE, "SCHEDULER_SERVICE_ACCOUNT": ACCOUNT,
                                  "OIDC_CERTS_URL": certs.url, "SCHEDULER_TRUST_PLATFORM_AUTH": "1" if trust else "0"})
    token = forwarded(signed(certs))
    if trust:
        assert Runtime(settings).scheduler_verifier("sweep").verify(token) == ACCOUNT
    else:
        with pytest.raises(Unauthenticated):
            Runtime(settings).scheduler_verifier("sweep").verify(token)


# -- what Cloud Run forwards ---------------------------------------------------------------

def test_a_forwarded_scheduler_token_is_accepted_behind_cloud_run(certs):
    assert verifier(certs, trust=True).verify(forwarded(signed(certs))) == ACCOUNT


def test_without_the_setting_a_forwarded_token_is_refused_however_good_its_claims(certs):
    with pytest.raises(Unauthenticated, match="SCHEDULER_TRUST_PLATFORM_AUTH"):
        verifier(certs, trust=False).verify(forwarded(signed(certs)))


def test_beside_an_x_serverless_authorization_header_a_forwarded_token_is_refused(certs):
    # Cloud Run then checked that header and passed Authorization through as it came.
    with pytest.raises(Unauthenticated, match="X-Serverless-Authorization"):
        verifier(certs, trust=True).verify(forwarded(signed(certs)), serverless_authorization=True)


def test_beside_an_x_serverless_authorization_header_a_signed_token_is_still_verified(certs):
    assert verifier(certs, trust=True).verify(signed(certs), serverless_authorization=True) == ACCOUNT


@pytest.mark.parametrize("case, overrides, refusal", [
    # overrides: now -> the claims to change (None: leave the claim out)
    ("wrong audience", lambda now: {"aud": "https://prod-acquire-123456789.europe-west1.run.app"}, Unauthenticated),
    ("audience as a list", lambda now: {"aud": [AUDIENCE]}, Unauthenticated),
    ("no audience", lambda now: {"aud": None}, Unauthenticated),
    ("wrong issuer", lambda now: {"iss": "https://securetoken.google.com/coditect-prod"}, Unauthenticated),
    ("no issuer", lambda now: {"iss": None}, Unauthenticated),
    ("expired", lambda now: {"iat": 1_000_000_000, "exp": 1_000_003_600}, Unauthenticated),
    ("expired just past the skew", lambda now: {"iat": now - 3600, "exp": now - SKEW_S - 2}, Unauthenticated),
    ("issued in the future", lambda now: {"iat": now + SKEW_S + 60}, Unauthenticated),
    ("no exp", lambda now: {"exp": None}, Unauthenticated),
    ("no iat", lambda now: {"iat": None}, Unauthenticated),
    ("exp as text", lambda now: {"exp": str(now + 3600)}, Unauthenticated),
    ("exp as true", lambda now: {"exp": True}, Unauthenticated),
    ("exp too large to be a time", lambda now: {"exp": 10**400}, Unauthenticated),
    ("other service account", lambda now: {"email": "intruder@coditect-prod.iam.gserviceaccount.com"}, Forbidden),
    ("the scheduler's account in other case", lambda now: {"email": ACCOUNT.upper()}, Forbidden),
    ("no email", lambda now: {"email": None}, Forbidden),
    ("unverified email", lambda now: {"email_verified": False}, Forbidden),
    ("email_verified as text", lambda now: {"email_verified": "true"}, Forbidden),
])
def test_a_forwarded_tokens_claims_are_still_checked(certs, case, overrides, refusal):
    body = {key: value for key, value in claims(**overrides(int(time.time()))).items() if value is not None}
    with pytest.raises(refusal):
        verifier(certs, trust=True).verify(unsigned(body))


def test_the_clock_skew_is_the_signed_paths(certs):
    now = int(time.time())
    trusting = verifier(certs, trust=True)
    assert trusting.verify(unsigned(claims(iat=now + SKEW_S - 3))) == ACCOUNT
    assert trusting.verify(unsigned(claims(iat=now - 3600, exp=now - SKEW_S + 3))) == ACCOUNT


def test_nan_and_infinity_are_no_times(certs):
    now = int(time.time())
    for name, value in (("exp", "Infinity"), ("exp", "NaN"), ("iat", "-Infinity")):
        body = json.dumps(claims()).replace(f'"{name}": {now + 3600 if name == "exp" else now}', f'"{name}": {value}')
        assert value in body
        with pytest.raises(Unauthenticated):
            verifier(certs, trust=True).verify(unsigned(body.encode()))


# -- a signature present is always verified ----------------------------------------------------

@pytest.mark.parametrize("trust", [False, True])
def test_a_signed_scheduler_token_is_accepted_either_way(certs, trust):
    assert verifier(certs, trust=trust).verify(signed(certs)) == ACCOUNT


@pytest.mark.parametrize("trust", [False, True])
@pytest.mark.parametrize("case", ["wrong key", "signature of another token", "marker in lower case",
                                  "marker with padding", "empty signature"])
def test_a_real_but_wrong_signature_is_refused_either_way(certs, trust, case):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = signed(certs)
    header, body, _ = good.split(".")
    token = {
        "wrong key": lambda: certs.sign(claims(), key=stranger),
        "signature of another token": lambda: f"{header}.{body}.{signed(certs, sub='2').split('.')[2]}",
        "marker in lower case": lambda: f"{header}.{body}.{REMOVED_SIGNATURE.lower()}",
        "marker with padding": lambda: f"{header}.{body}.{REMOVED_SIGNATURE}=",
        "empty signature": lambda: f"{header}.{body}.",
    }[case]()
    with pytest.raises(Unauthenticated):
        verifier(certs, trust=trust).verify(token)


# -- nothing malformed gets further than 401 -----------------------------------------------------

MALFORMED = {
    "one part": "abc",
    "two parts": "abc.def",
    "four parts": f"{segment({'alg': 'RS256'})}.{segment(claims())}.{REMOVED_SIGNATURE}.x",
    "empty parts": "..",
    "not base64url": f"{segment({'alg': 'RS256'})}.{segment(claims())[:-1]}*.{REMOVED_SIGNATURE}",
    "impossible base64 length": f"abcde.{segment(claims())}.{REMOVED_SIGNATURE}",
    "header not JSON": f"{segment(b'not json')}.{segment(claims())}.{REMOVED_SIGNATURE}",
    "claims not JSON": f"{segment({'alg': 'RS256'})}.{segment(b'{')}.{REMOVED_SIGNATURE}",
    "claims not UTF-8": f"{segment({'alg': 'RS256'})}.{segment(bytes([0xFF, 0xFE]))}.{REMOVED_SIGNATURE}",
    "header a list": f"{segment([])}.{segment(claims())}.{REMOVED_SIGNATURE}",
    "claims a list": f"{segment({'alg': 'RS256'})}.{segment([claims()])}.{REMOVED_SIGNATURE}",
    "claims null": f"{segment({'alg': 'RS256'})}.{segment(None)}.{REMOVED_SIGNATURE}",
    "claims a string": f"{segment({'alg': 'RS256'})}.{segment('x')}.{REMOVED_SIGNATURE}",
    "header nested too deep": f"{segment(b'[' * 3000)}.{segment(claims())}.{REMOVED_SIGNATURE}",
    "claims nested too deep": f"{segment({'alg': 'RS256'})}.{segment(b'[' * 3000)}.{REMOVED_SIGNATURE}",
    "signed, header nested too deep": f"{segment(b'[' * 3000)}.{segment(claims())}.c2lnbmF0dXJl",
    "non-ASCII": f"{segment({'alg': 'RS256'})}.é.{REMOVED_SIGNATURE}",
}


@pytest.mark.parametrize("trust", [False, True])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_token_is_unauthenticated(certs, trust, case):
    with pytest.raises(Unauthenticated):
        verifier(certs, trust=trust).verify(MALFORMED[case])
