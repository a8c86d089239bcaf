"""The client SDK (client/, installed into .venv) against the real local stack over HTTP.

Every test gets its own SDK cache and config dirs (jwks, borrows, CLI sessions and
credentials) and its own user, so seats never mix between tests.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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



# -- the Firebase Auth emulator (firebase-tools from npm, pinned) ------------------------
FIREBASE_TOOLS_VERSION = "15.34.2"


def _firebase_cli() -> Path:
    """firebase-tools for the Auth emulator: ./scripts/test installs it (pinned) into .tools/."""
    cli = Path(__file__).resolve().parents[2] / ".tools" / f"firebase-tools-{FIREBASE_TOOLS_VERSION}" / "node_modules" / ".bin" / "firebase"
    assert cli.exists(), f"{cli} is missing: ./scripts/test installs firebase-tools@{FIREBASE_TOOLS_VERSION}"
    return cli


@dataclass(frozen=True)
class AuthEmulator:
    host: str  # "127.0.0.1:<port>"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def sign_up(self, email: str, password: str) -> dict:
        import httpx

        answer = httpx.post(f"{self.url}/identitytoolkit.googleapis.com/v1/accounts:signUp",
                            params={"key": "emulator-api-key"},
                            json={"email": email, "password": password, "returnSecureToken": True}, timeout=10)
        answer.raise_for_status()
        return answer.json()


@pytest.fixture(scope="session")
def auth_emulator(stack, tmp_path_factory):
    """The real Firebase Auth emulator for project demo-coditect on free ports."""
    import json

    import httpx
    from devstack.processes import free_port, spawn, stop, wait_until

    cli = _firebase_cli()
    folder = tmp_path_factory.mktemp("auth-emulator")
    port = free_port()
    (folder / "firebase.json").write_text(json.dumps({"emulators": {
        "auth": {"host": "127.0.0.1", "port": port},
        "hub": {"host": "127.0.0.1", "port": free_port()},
        "logging": {"host": "127.0.0.1", "port": free_port()},
        "ui": {"enabled": False},
    }}))
    log = open(folder / "emulator.log", "wb")
    import os

    env = {**os.environ, "NO_UPDATE_NOTIFIER": "1", "FIREBASE_CLI_DISABLE_UPDATE_CHECK": "true",
           "HOME": str(folder)}  # its own config store, nothing of the user's
    process = spawn([str(cli), "emulators:start", "--only", "auth", "--project", stack.project_id,
                     "--config", str(folder / "firebase.json")], env=env, stdout=log, stderr=log, cwd=str(folder))
    emulator = AuthEmulator(f"127.0.0.1:{port}")
    try:
        wait_until(lambda: httpx.get(f"{emulator.url}/", timeout=1).status_code == 200, timeout_s=90,
                   what="the Firebase Auth emulator", process=process)
        yield emulator
    finally:
        stop(process, timeout_s=10)
        log.close()
