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
    url: str
    kid: str
    private_key: object
    project_id: str

    def sign(self, uid: str = "prod-user", *, key=None, kid: str | None = None, **overrides) -> str:
        """An RS256 Firebase ID token as Google would issue it (overrides replace claims)."""
        import time

        import jwt

        now = int(time.time())
        claims = {
            "iss": f"https://securetoken.google.com/{self.project_id}", "aud": self.project_id,
            "sub": uid, "iat": now - 10, "exp": now + 3600, "auth_time": now - 10,
            "email": f"{uid}@example.com", "email_verified": True,
            "firebase": {"identities": {}, "sign_in_provider": "password"},
        }
        claims.update(overrides)
        return jwt.encode(claims, key or self.private_key, algorithm="RS256", headers={"kid": kid or self.kid})


@pytest.fixture(scope="session")
def google_certs(stack) -> Iterator[GoogleCerts]:
    """Serves {kid: x509 PEM} like Google's securetoken certificate endpoint."""
    import datetime
    import http.server
    import json
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    kid = "test-kid-1"
    body = json.dumps({kid: cert.public_bytes(serialization.Encoding.PEM).decode()}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=3600")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield GoogleCerts(f"http://127.0.0.1:{server.server_port}/certs", kid, key, stack.project_id)
    server.shutdown()
