"""401 for every kind of bad ID token, over HTTP, on the production verification path."""

from __future__ import annotations

import base64
import time

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.dev_tokens import emulator_id_token


def test_a_valid_google_signed_token_acquires(production_auth_server, google_certs, make_license):
    lic = make_license()
    answer = httpx.post(
        f"{production_auth_server.base_url}/acquire",
        json={"license_key": lic.key, "hardware_id": "hw"},
        headers={"Authorization": f"Bearer {google_certs.sign('carol')}"},
    )
    assert answer.status_code == 201, answer.text


# deeply nested: JSON nested 1,500 levels (4 KiB of token) overflows the JSON parser.
NESTED = base64.urlsafe_b64encode(b"[" * 1500 + b"]" * 1500).decode().rstrip("=")


@pytest.mark.parametrize("case", ["missing", "malformed", "expired", "forged", "wrong audience", "unsigned emulator token",
                                  "deeply nested"])
@pytest.mark.parametrize("name", ["acquire", "heartbeat", "release", "validate"])
def test_bad_tokens_are_401(production_auth_server, google_certs, stack, name, case):
    now = int(time.time())
    authorization = {
        "missing": None,
        "malformed": "Bearer not.a.token",
        "expired": f"Bearer {google_certs.sign(exp=now - 60, iat=now - 3660)}",
        "forged": f"Bearer {google_certs.sign(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))}",
        "wrong audience": f"Bearer {google_certs.sign(aud='another-project')}",
        "unsigned emulator token": f"Bearer {emulator_id_token(stack.project_id, 'mallory')}",
        "deeply nested": f"Bearer {NESTED}.e30.c2ln",
    }[case]
    headers = {"Authorization": authorization} if authorization else {}
    answer = httpx.post(f"{production_auth_server.base_url}/{name}", json={"session_id": "x"}, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "UNAUTHENTICATED"
