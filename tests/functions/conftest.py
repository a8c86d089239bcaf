"""Fixtures of the admin-function tests: its API as an owner or a tenant admin, and two
fresh tenants to test isolation between."""

from __future__ import annotations

import secrets

import pytest


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
