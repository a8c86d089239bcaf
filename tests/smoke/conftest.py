"""Where the smoke tests point.

Deployed: SMOKE_BASE_URL=https://<region>-<project>.cloudfunctions.net/<env>- style base
(each function at <base><name>, or one host with /<name>), SMOKE_ADMIN_TOKEN = an ID token
of a tenant admin, SMOKE_USER_TOKEN = an end user's ID token. Locally (the default, also
inside ./scripts/test): the test session's own function server and minted tokens.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class SmokeTarget:
    base_url: str
    admin_token: str
    user_token: str

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


@pytest.fixture(scope="session")
def smoke_target(request) -> SmokeTarget:
    base_url = os.environ.get("SMOKE_BASE_URL")
    if base_url:
        missing = [name for name in ("SMOKE_ADMIN_TOKEN", "SMOKE_USER_TOKEN") if not os.environ.get(name)]
        if missing:
            pytest.fail(f"smoke tests against {base_url} need {', '.join(missing)}")
        return SmokeTarget(base_url, os.environ["SMOKE_ADMIN_TOKEN"], os.environ["SMOKE_USER_TOKEN"])
    server = request.getfixturevalue("function_server")
    id_token = request.getfixturevalue("id_token")
    tenant = request.getfixturevalue("tenant")
    return SmokeTarget(server.base_url, id_token("smoke-admin", role="admin", tenant=tenant), id_token("smoke-user"))
