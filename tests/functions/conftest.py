"""Fixtures of the function tests: the admin API as an owner or a tenant admin, two fresh
tenants to test isolation between, and an isolated world with a clock the test moves."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

import pytest

from devstack.dev_tokens import emulator_id_token
from shared.clock import ManualClock
from shared.licensing.provisioning import LicenseSpec
from shared.runtime import Runtime, install_runtime


@pytest.fixture
def admin_api(function_clients, id_token):
    """admin_api("GET", "licenses/x", role="admin", tenant="t") -> (status, json)."""

    def call(method, path, body=None, *, uid="admin-1", role="admin", tenant=None, token=None, query=None):
        headers = {}
        if token is not False:
            claims = {k: v for k, v in {"role": role, "tenant": tenant}.items() if v}
            headers["Authorization"] = f"Bearer {token or id_token(uid, **claims)}"
        kwargs = {"json": body} if body is not None else {}
        response = function_clients["admin"].open("/" + path, method=method, headers=headers,
                                                   query_string=query or {}, **kwargs)
        return response.status_code, response.get_json(silent=True)

    return call


@pytest.fixture
def tenants(admin_api):
    """Two fresh tenants, created by the owner."""
    ids = [f"ten-{secrets.token_hex(3)}" for _ in range(2)]
    for tenant_id in ids:
        status, body = admin_api("POST", "tenants", {"id": tenant_id, "name": f"Tenant {tenant_id}"},
                                 role="owner", uid="root")
        assert status == 201 and body["id"] == tenant_id
    return ids


@dataclass
class World:
    """A runtime of its own: its own Redis database and Firestore project (the emulator keeps
    projects apart), and a clock the test moves. For what walks everything there is (the
    sweep, the usage history)."""

    rt: Runtime
    clock: ManualClock
    stack: object
    clients: dict
    tenant: str

    def reconfigure(self, **settings) -> Runtime:
        """A runtime with these settings changed (same backends, same clock), installed."""
        self.rt = Runtime(replace(self.rt.settings, **settings), clock=self.clock)
        install_runtime(self.rt)
        return self.rt

    def license(self, seats: int = 3, *, tenant: str | None = None, **fields):
        spec = LicenseSpec(tenant_id=tenant or self.tenant, max_seats=seats, **fields)
        issued = self.rt.provisioning.create_license(spec, actor="tests")
        return issued.license, issued.license_key

    def token(self, uid: str = "user-1", **claims) -> str:
        claims.setdefault("email", f"{uid}@example.com")
        return emulator_id_token(self.rt.settings.project_id, uid, **claims)

    def call(self, name, body=None, *, uid="user-1", token=None, method="POST"):
        token = token or self.token(uid)
        response = self.clients[name].open("/", method=method, json=body, headers={"Authorization": f"Bearer {token}"})
        return response.status_code, response.get_json(silent=True)

    def admin(self, method: str, path: str, *, uid: str = "admin-1", role: str = "admin", tenant: str | None = None,
              query: dict | None = None, headers: dict | None = None, body=None):
        """The admin function's answer (a Flask test response: .status_code, .get_json(), .text)."""
        claims = {k: v for k, v in {"role": role, "tenant": tenant}.items() if v}
        kwargs = {"json": body} if body is not None else {}
        return self.clients["admin"].open("/" + path, method=method, query_string=query or {},
                                          headers={"Authorization": f"Bearer {self.token(uid, **claims)}",
                                                   **(headers or {})}, **kwargs)

    def acquire(self, key, hw="hw", uid="user-1"):
        status, body = self.call("acquire", {"license_key": key, "hardware_id": hw}, uid=uid)
        assert status in (200, 201), body
        return body["session_id"]

    def sweep(self, token=None, **headers):
        token = token or self.stack.scheduler_token()
        response = self.clients["sweep"].post("/", headers={"Authorization": f"Bearer {token}", **headers})
        return response.status_code, response.get_json()

    def record(self, sid):
        return self.rt.store.get_session(sid)

    def events(self, sid):
        return sorted(e["type"] for e in self.rt.store.events_for_session(sid))


_next_db = iter(range(1, 16))


@pytest.fixture
def world(stack, rt, function_clients):
    db = next(_next_db, None) or 15
    redis_url = stack.redis_url.rsplit("/", 1)[0] + f"/{db}"
    replace(stack.redis, url=redis_url).client().flushdb()
    clock = ManualClock(start_ms=rt.clock.now_ms())
    settings = replace(rt.settings, project_id=f"demo-sweep-{secrets.token_hex(4)}", redis_url=redis_url)
    isolated = Runtime(settings, clock=clock)
    install_runtime(isolated)
    isolated.provisioning.create_tenant("Sweep tenant", tenant_id="sweepers", actor="tests")
    yield World(isolated, clock, stack, function_clients, "sweepers")
    install_runtime(rt)
