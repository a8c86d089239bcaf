"""The admin function checks each administrator's account as Firebase holds it now.

Against the real Firebase Auth emulator: an ID token stays valid for an hour, but an
administrator who was disabled, revoked, deleted or demoted must lose access at once
(within the verifier's one-minute cache), not when the token expires.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace

import firebase_admin
import httpx
import pytest
from firebase_admin import auth

from devstack.dev_tokens import emulator_id_token
from shared.runtime import Runtime, install_runtime


@pytest.fixture
def accounts(auth_emulator, rt, monkeypatch):
    """A runtime whose admin function checks accounts in the Auth emulator, and a way to make admins."""
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", auth_emulator.host)
    install_runtime(Runtime(replace(rt.settings, admin_checks_accounts=True)))
    app = firebase_admin.initialize_app(options={"projectId": rt.settings.project_id},
                                        name=f"accounts-{secrets.token_hex(4)}")
    tenant = f"acct-{secrets.token_hex(3)}"
    rt.provisioning.create_tenant("Accounts", tenant_id=tenant, actor="tests")

    def new_admin() -> tuple[str, str]:
        """(uid, a fresh ID token carrying role=admin and the tenant) of a new account."""
        email, password = f"admin-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(12)
        uid = auth.create_user(email=email, password=password, app=app).uid
        auth.set_custom_user_claims(uid, {"role": "admin", "tenant": tenant}, app=app)
        signed_in = httpx.post(f"{auth_emulator.url}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword",
                               params={"key": "emulator-api-key"}, timeout=10,
                               json={"email": email, "password": password, "returnSecureToken": True})
        signed_in.raise_for_status()
        return uid, signed_in.json()["idToken"]

    yield app, new_admin
    firebase_admin.delete_app(app)
    install_runtime(rt)


def _licenses(function_clients, token):
    response = function_clients["admin"].get("/licenses", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.get_json()


def test_a_current_administrator_is_served(accounts, function_clients):
    _, new_admin = accounts
    _, token = new_admin()
    assert _licenses(function_clients, token)[0] == 200
    assert _licenses(function_clients, token)[0] == 200  # the second time from the verifier's cache


def test_a_demoted_administrator_loses_access_with_the_token_it_holds(accounts, function_clients):
    app, new_admin = accounts
    uid, token = new_admin()
    auth.set_custom_user_claims(uid, {}, app=app)
    status, answer = _licenses(function_clients, token)
    assert status == 401 and "role or tenant changed" in answer["error"]["message"]


def test_a_disabled_administrator_loses_access(accounts, function_clients):
    app, new_admin = accounts
    uid, token = new_admin()
    auth.update_user(uid, disabled=True, app=app)
    status, answer = _licenses(function_clients, token)
    assert status == 401 and "disabled" in answer["error"]["message"]


def test_revoked_tokens_lose_access(accounts, function_clients):
    app, new_admin = accounts
    uid, token = new_admin()
    time.sleep(1.05)  # revocation is to the second: the token must predate it
    auth.revoke_refresh_tokens(uid, app=app)
    status, answer = _licenses(function_clients, token)
    assert status == 401 and "revoked" in answer["error"]["message"]


def test_a_deleted_or_unknown_account_loses_access(accounts, function_clients, rt):
    app, new_admin = accounts
    uid, token = new_admin()
    auth.delete_user(uid, app=app)
    assert _licenses(function_clients, token)[0] == 401
    forged = emulator_id_token(rt.settings.project_id, "nobody-here", role="owner")
    status, answer = _licenses(function_clients, forged)
    assert status == 401 and "no longer exists" in answer["error"]["message"]


def test_seat_functions_do_not_look_accounts_up(accounts, call, make_license):
    """The hot path stays free of Auth lookups: an unknown account still acquires."""
    lic = make_license()
    assert call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid="not-in-the-emulator")[0] == 201
