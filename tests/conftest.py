"""Test harness: one real local stack per test session.

Tiers (folders): unit (pure logic), integration (real Redis / Firestore emulator / KMS
stand-in through the production adapters), functions (each function in-process via
functions-framework's create_app test client, over the real stack), system (real
gunicorn + functions-framework over HTTP). A backend that fails to start fails the
run: nothing here skips.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from devstack.dev_tokens import emulator_id_token  # noqa: E402
from devstack.stack import LocalStack  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    with LocalStack.start() as local:
        local.apply_env()
        yield local


@pytest.fixture(scope="session")
def rt(stack):
    """The process runtime, built from the stack's environment (system clock)."""
    from shared.runtime import install_runtime, runtime

    install_runtime(None)
    return runtime()


@pytest.fixture(scope="session")
def tenant(rt) -> str:
    tenant_id = f"t-{secrets.token_hex(4)}"
    rt.provisioning.create_tenant(f"Test tenant {tenant_id}", tenant_id=tenant_id, actor="tests")
    return tenant_id


@dataclass(frozen=True)
class IssuedKey:
    license_id: str
    key: str
    tenant_id: str


@pytest.fixture
def make_license(rt, tenant):
    """Create a license in the session's tenant: make_license(seats=3, lease_ttl_s=60, ...)."""
    from shared.licensing.provisioning import LicenseSpec

    def make(seats: int = 3, *, tenant_id: str | None = None, **fields) -> IssuedKey:
        spec = LicenseSpec(tenant_id=tenant_id or tenant, max_seats=seats, **fields)
        issued = rt.provisioning.create_license(spec, actor="tests")
        return IssuedKey(issued.license.id, issued.license_key, spec.tenant_id)

    return make


@pytest.fixture(scope="session")
def id_token(stack):
    """Mint a local (emulator) ID token: id_token("alice", email=..., tenant=..., role=...)."""

    def mint(uid: str = "user-1", **claims) -> str:
        claims.setdefault("email", f"{uid}@example.com")
        return emulator_id_token(stack.project_id, uid, **claims)

    return mint


@pytest.fixture(scope="session")
def function_clients(stack):
    """name -> create_app(...).test_client(): each function exactly as functions-framework serves it."""
    import functions_framework

    clients = {}
    for folder in sorted((REPO / "functions").iterdir()):
        if (folder / "main.py").is_file():
            app = functions_framework.create_app(target=folder.name, source=str(folder / "main.py"))
            clients[folder.name] = app.test_client()
    return clients


@pytest.fixture
def call(function_clients, id_token):
    """call("acquire", {...}, uid="alice") -> (status, json, headers) through the test client."""

    def invoke(name: str, body=None, *, uid: str | None = "user-1", token: str | None = None,
               method: str = "POST", path: str = "/", headers: dict | None = None, **claims):
        all_headers = dict(headers or {})
        if token is None and uid is not None:
            token = id_token(uid, **claims)
        if token is not None:
            all_headers.setdefault("Authorization", f"Bearer {token}")
        kwargs = {"json": body} if body is not None else {}
        response = function_clients[name].open(path, method=method, headers=all_headers, **kwargs)
        return response.status_code, response.get_json(silent=True), response.headers

    return invoke


@pytest.fixture(scope="session")
def function_server(stack, tmp_path_factory):
    """Every function at <base_url>/<name>, emulator ID tokens accepted (as ./scripts/dev)."""
    log = tmp_path_factory.mktemp("logs") / "functions.log"
    server = stack.serve_functions(workers=2, threads=8, log_path=log)
    yield server
    server.stop()


@pytest.fixture
def manual_clock(rt):
    """Install a runtime whose clock only moves when the test says so (same backends)."""
    from shared.clock import ManualClock
    from shared.runtime import Runtime, install_runtime

    clock = ManualClock(start_ms=rt.clock.now_ms())
    install_runtime(Runtime(rt.settings, clock=clock))
    yield clock
    install_runtime(rt)


# -- production ID tokens: a test key whose certificates a local server publishes ------

@dataclass(frozen=True)
class GoogleCerts:
    certs: object
    project_id: str

    @property
    def url(self) -> str:
        return self.certs.url

    def sign(self, uid: str = "prod-user", *, key=None, kid: str | None = None, **overrides) -> str:
        """An RS256 Firebase ID token as Google would issue it (overrides replace claims)."""
        import time

        now = int(time.time())
        claims = {
            "iss": f"https://securetoken.google.com/{self.project_id}", "aud": self.project_id,
            "sub": uid, "iat": now - 10, "exp": now + 3600, "auth_time": now - 10,
            "email": f"{uid}@example.com", "email_verified": True,
            "firebase": {"identities": {}, "sign_in_provider": "password"},
        }
        claims.update(overrides)
        return self.certs.sign(claims, key=key, kid=kid)


@pytest.fixture(scope="session")
def google_certs(stack) -> Iterator[GoogleCerts]:
    """Serves {kid: x509 PEM} like Google's securetoken certificate endpoint."""
    from devstack.google_certs import LocalGoogleCerts

    certs = LocalGoogleCerts()
    yield GoogleCerts(certs, stack.project_id)
    certs.stop()


# -- the Firebase Auth emulator (firebase-tools from npm, pinned) ------------------------

@pytest.fixture(scope="session")
def auth_emulator(stack):
    """The real Firebase Auth emulator for the stack's project on free ports (devstack.auth_emulator)."""
    from devstack.auth_emulator import AuthEmulator

    emulator = AuthEmulator(stack.project_id).start()
    yield emulator
    emulator.stop()
