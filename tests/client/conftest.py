"""The client SDK (client/, installed into .venv) against the real local stack over HTTP.

Every test gets its own SDK cache and config dirs (jwks, borrows, CLI sessions and
credentials) and its own user, so seats never mix between tests.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SDK_ENV = ("CODITECT_FINGERPRINT", "CODITECT_WORKLOAD_ID", "CODITECT_LICENSE_SERVER", "CODITECT_LICENSE_KEY",
           "CODITECT_ID_TOKEN", "KUBERNETES_SERVICE_HOST")


@pytest.fixture(autouse=True)
def sdk_dirs(tmp_path, monkeypatch):
    """Private cache/config dirs for this test (the SDK and its CLI read them from the env)."""
    cache, config = tmp_path / "sdk-cache", tmp_path / "sdk-config"
    monkeypatch.setenv("CODITECT_LICENSE_CACHE_DIR", str(cache))
    monkeypatch.setenv("CODITECT_LICENSE_CONFIG_DIR", str(config))
    for name in SDK_ENV:
        monkeypatch.delenv(name, raising=False)
    return cache, config


@dataclass
class User:
    uid: str
    mint: Callable[..., str]

    def token(self, **claims) -> str:
        return self.mint(self.uid, **claims)

    def provider(self) -> Callable[[], str]:
        """A provider minting a fresh emulator ID token on each call (as a refresher would)."""
        return lambda: self.mint(self.uid)


@pytest.fixture
def user(id_token) -> User:
    return User(f"sdk-{secrets.token_hex(4)}", id_token)


@pytest.fixture
def other_user(id_token) -> User:
    return User(f"sdk-other-{secrets.token_hex(4)}", id_token)


@pytest.fixture
def server(function_server) -> str:
    return function_server.base_url


@pytest.fixture(scope="session")
def trusted_roots(function_server) -> list:
    """The stack's root thumbprints, as a vendor pins them: the kids of its GET /jwks,
    each checked against the thumbprint computed from the key itself."""
    import httpx

    from coditect_license.tokens import jwk_thumbprint

    keys = httpx.get(f"{function_server.base_url}/jwks", timeout=10).json()["keys"]
    assert keys and all(jwk_thumbprint(key) == key["kid"] for key in keys)
    return [key["kid"] for key in keys]


@pytest.fixture
def own_server(stack, tmp_path):
    """A function server of this test's own, which it may stop and start on the same port."""
    from devstack.processes import free_port

    class Own:
        def __init__(self):
            self.port = free_port()
            self.base_url = f"http://127.0.0.1:{self.port}"
            self.log = tmp_path / "own-functions.log"
            self.server = None

        def start(self):
            self.server = stack.serve_functions(port=self.port, workers=1, threads=4, log_path=self.log)
            return self

        def stop(self):
            if self.server is not None:
                self.server.stop()
                self.server = None

    own = Own().start()
    yield own
    own.stop()
