"""Where the smoke tests point, and as whom.

Deployed gen2 functions each have their own URL: SMOKE_URL_TEMPLATE, e.g.
`https://europe-west1-P.cloudfunctions.net/staging-{name}` (Terraform's output
`function_url_template`). One host serving every function at /<name> (the dev stack):
SMOKE_BASE_URL. Identity: SMOKE_OWNER_TOKEN / SMOKE_USER_TOKEN (ID tokens), or test users
that sign in through Firebase Auth's REST API: SMOKE_FIREBASE_API_KEY with
SMOKE_OWNER_EMAIL/SMOKE_OWNER_PASSWORD and SMOKE_USER_EMAIL/SMOKE_USER_PASSWORD (what
cloudbuild.yaml does: ID tokens expire, passwords in Secret Manager do not). With none of
these (inside ./scripts/test) the test session's own function server and minted tokens.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx
import pytest

SIGN_IN_PATH = "identitytoolkit.googleapis.com/v1/accounts:signInWithPassword"


def _sign_in_url() -> str:
    """Firebase Auth's REST sign-in; its emulator's when FIREBASE_AUTH_EMULATOR_HOST names one
    (how tests/system/test_first_deploy_docs.py runs these tests as the documented accounts)."""
    emulator = os.environ.get("FIREBASE_AUTH_EMULATOR_HOST")
    return f"http://{emulator}/{SIGN_IN_PATH}" if emulator else f"https://{SIGN_IN_PATH}"


@dataclass(frozen=True)
class SmokeTarget:
    url_template: str  # "{name}" is the function; the rest of the path follows it
    owner_token: str  # the vendor's smoke account: only the owner creates and revokes licenses
    user_token: str
    tenant: str  # the tenant smoke licenses are sold to (created if missing)

    def url(self, path: str) -> str:
        name, _, rest = path.strip("/").partition("/")
        return self.url_template.format(name=name) + (f"/{rest}" if rest else "")


def _sign_in(api_key: str, email: str, password: str) -> str:
    answer = httpx.post(_sign_in_url(), params={"key": api_key}, timeout=30,
                        json={"email": email, "password": password, "returnSecureToken": True})
    if answer.status_code != 200:
        pytest.fail(f"signing in {email} failed: {answer.status_code} {answer.text[:200]}")
    return answer.json()["idToken"]


def _token(role: str) -> str | None:
    token = os.environ.get(f"SMOKE_{role}_TOKEN")
    if token:
        return token
    api_key, email, password = (os.environ.get(f"SMOKE_{n}") for n in ("FIREBASE_API_KEY", f"{role}_EMAIL", f"{role}_PASSWORD"))
    return _sign_in(api_key, email, password) if api_key and email and password else None


@pytest.fixture(scope="session")
def smoke_target(request) -> SmokeTarget:
    template = os.environ.get("SMOKE_URL_TEMPLATE")
    if not template and os.environ.get("SMOKE_BASE_URL"):
        template = os.environ["SMOKE_BASE_URL"].rstrip("/") + "/{name}"
    if template:
        owner, user = _token("OWNER"), _token("USER")
        if not (owner and user):
            pytest.fail("smoke tests against a deployment need SMOKE_OWNER_TOKEN and SMOKE_USER_TOKEN, "
                        "or SMOKE_FIREBASE_API_KEY with the test users' emails and passwords")
        return SmokeTarget(template, owner, user, os.environ.get("SMOKE_TENANT", "smoke"))
    server = request.getfixturevalue("function_server")
    id_token = request.getfixturevalue("id_token")
    tenant = request.getfixturevalue("tenant")
    return SmokeTarget(server.base_url + "/{name}", id_token("smoke-owner", role="owner"), id_token("smoke-user"),
                       tenant)
