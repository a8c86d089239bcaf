"""licensectl grant-role | revoke-role | whois | create-user against the real Firebase Auth emulator.

The roles are custom claims set through firebase-admin; what proves them right is the
admin function itself: here served with account checks against the same emulator (as
./scripts/dev and production run it), and called with ID tokens from signing in through
the emulator's REST API.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checked_server(stack, auth_emulator, tmp_path_factory):
    """The functions with the admin function checking every caller's account in the Auth emulator."""
    log = tmp_path_factory.mktemp("logs") / "functions-accounts.log"
    server = stack.serve_functions(workers=1, threads=4, log_path=log,
                                   extra_env={"FIREBASE_AUTH_EMULATOR_HOST": auth_emulator.host,
                                              "ADMIN_CHECK_ACCOUNTS": "1"})
    yield server
    server.stop()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LICENSECTL_")}
    env.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
    return {**env, **extra}


def licensectl(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "scripts" / "licensectl"), *args], env=env, input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120)


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


def _claims(id_token: str) -> dict:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _stored_claims(auth_emulator, uid: str) -> dict:
    """The account's custom claims as the emulator holds them (its admin REST API, not licensectl)."""
    answer = httpx.post(f"{auth_emulator.url}/identitytoolkit.googleapis.com/v1/projects/{auth_emulator.project_id}"
                        "/accounts:lookup", json={"localId": [uid]}, headers={"Authorization": "Bearer owner"},
                        timeout=10)
    answer.raise_for_status()
    return json.loads(answer.json()["users"][0].get("customAttributes") or "{}")


def _new_email(name: str) -> str:
    return f"{name}-{secrets.token_hex(4)}@demo-coditect.test"


def test_a_granted_admin_administers_its_tenant_and_a_revoked_one_nothing(auth_emulator, checked_server, stack, rt):
    env = _env(FIREBASE_AUTH_EMULATOR_HOST=auth_emulator.host)
    firebase = ["--project", stack.project_id]
    tenant = f"roles-{secrets.token_hex(3)}"
    rt.provisioning.create_tenant("Roles", tenant_id=tenant, actor="tests")
    email, password = _new_email("ada"), secrets.token_urlsafe(12)
    uid = auth_emulator.sign_up(email, password)["localId"]
    auth_emulator.set_custom_claims(uid, {"plan": "gold"})  # another app's claim: kept through every change
    before_grant = auth_emulator.sign_in_with_password(email, password)["idToken"]

    granted = json.loads(ok(licensectl("grant-role", email, "--role", "admin", "--tenant", tenant, *firebase,
                                       "--json", env=env)).stdout)
    assert granted["custom_claims"] == {"plan": "gold", "role": "admin", "tenant": tenant}
    assert granted["administers"] == f"tenant {tenant} (role admin)" and granted["claims_before"] == {"plan": "gold"}
    assert _stored_claims(auth_emulator, uid) == {"plan": "gold", "role": "admin", "tenant": tenant}

    # a token from signing in now carries the claims, and the admin function serves it as the tenant's admin
    token = auth_emulator.sign_in_with_password(email, password)["idToken"]
    assert (_claims(token)["role"], _claims(token)["tenant"]) == ("admin", tenant)
    admin = ["--base-url", checked_server.base_url, "--token", token]
    assert ok(licensectl(*admin, "licenses", env=env)).stdout == "(no licenses)\n"
    assert ok(licensectl(*admin, "events", "--json", env=env))
    owner_only = licensectl(*admin, "create-license", "--tenant", tenant, "--seats", "1", env=env)
    assert owner_only.returncode == 1 and "403 FORBIDDEN: only the platform owner" in owner_only.stderr
    stale = licensectl("--base-url", checked_server.base_url, "--token", before_grant, "licenses", env=env)
    assert stale.returncode == 1 and "401 UNAUTHENTICATED" in stale.stderr and "refresh it" in stale.stderr

    whois = ok(licensectl("whois", email, *firebase, env=env)).stdout
    assert len(whois.splitlines()) == 9 and "\\n" not in whois
    for line in (f"uid                 {uid}", f"email               {email} (not verified)", "disabled            no",
                 f'custom claims       {{"plan": "gold", "role": "admin", "tenant": "{tenant}"}}',
                 f"administers         tenant {tenant} (role admin)", "the Firebase Auth emulator at"):
        assert line in whois
    assert json.loads(ok(licensectl("whois", uid, *firebase, "--json", env=env)).stdout)["email"] == email

    # revoked: the claims go (the other app's stays), and so do the refresh tokens
    unused = auth_emulator.sign_in_with_password(email, password)["idToken"]
    time.sleep(1.05)  # revocation is to the second: the token must predate it
    revoked = ok(licensectl("revoke-role", email, *firebase, env=env)).stdout
    assert "no longer administers anything; its refresh tokens are revoked" in revoked
    assert _stored_claims(auth_emulator, uid) == {"plan": "gold"}
    refused = licensectl("--base-url", checked_server.base_url, "--token", unused, "licenses", env=env)
    assert refused.returncode == 1 and "401 UNAUTHENTICATED: the ID token was revoked" in refused.stderr
    fresh = auth_emulator.sign_in_with_password(email, password)["idToken"]
    no_role = licensectl("--base-url", checked_server.base_url, "--token", fresh, "licenses", env=env)
    assert no_role.returncode == 1 and "403 FORBIDDEN" in no_role.stderr
    assert "had no role: nothing changed" in ok(licensectl("revoke-role", uid, *firebase, env=env)).stdout


def test_the_first_deploys_smoke_accounts_are_made_with_a_password_from_stdin(auth_emulator, checked_server, stack):
    env = _env(FIREBASE_AUTH_EMULATOR_HOST=auth_emulator.host)
    firebase = ["--project", stack.project_id]
    owner_email, user_email = _new_email("smoke-owner"), _new_email("smoke-user")
    owner_password, user_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)

    made = ok(licensectl("grant-role", owner_email, "--role", "owner", "--create", "--password-stdin", *firebase,
                         env=env, stdin=owner_password + "\n")).stdout
    owner = f"{owner_email} (uid {made.split('(uid ')[1].split(')')[0]})"
    assert made.splitlines()[:2] == [f"created {owner}", f"{owner} now administers every tenant (role owner)"]
    user = json.loads(ok(licensectl("create-user", user_email, "--password-stdin", "--email-verified", *firebase,
                                    "--json", env=env, stdin=user_password + "\n")).stdout)
    assert (user["created"], user["custom_claims"], user["email_verified"]) == (True, {}, True)
    again = licensectl("create-user", user_email, "--password-stdin", *firebase, env=env, stdin="other\n")
    assert again.returncode == 1 and "exists already" in again.stderr and "password is unchanged" in again.stderr
    via_env = ok(licensectl("create-user", _new_email("env"), *firebase,
                            env={**env, "LICENSECTL_NEW_PASSWORD": secrets.token_urlsafe(12)}))
    assert "no role" in via_env.stdout

    # the owner signs in with that password and sells; the user signs in and holds no role
    owner_token = auth_emulator.sign_in_with_password(owner_email, owner_password)["idToken"]
    assert _claims(owner_token)["role"] == "owner" and "tenant" not in _claims(owner_token)
    tenant = f"smoke-{secrets.token_hex(3)}"
    as_owner = ["--base-url", f"{checked_server.base_url}/{{name}}", "--token", owner_token]
    ok(licensectl(*as_owner, "create-tenant", "Smoke tests", "--id", tenant, env=env))
    assert tenant in ok(licensectl(*as_owner, "tenants", "--all", env=env)).stdout
    user_token = auth_emulator.sign_in_with_password(user_email, user_password)["idToken"]
    assert "role" not in _claims(user_token)
    # granting again what the account has changes nothing
    same = ok(licensectl("grant-role", owner_email, "--role", "owner", "--create", *firebase, env=env)).stdout
    assert "exists already: its password is unchanged" in same
    assert "already administers every tenant (role owner): nothing changed" in same


@pytest.mark.parametrize(("args", "status", "says"), [
    (["grant-role", "a@b.test", "--role", "superuser"], 2, "unknown role 'superuser': the admin function knows owner"),
    (["grant-role", "a@b.test", "--role", "admin"], 2, "--role admin needs --tenant"),
    (["grant-role", "a@b.test", "--role", "admin", "--tenant", "Not A Tenant"], 2, "'Not A Tenant' is not a tenant id"),
    (["grant-role", "a@b.test", "--role", "owner", "--tenant", "acme"], 2, "an owner acts in every tenant"),
    (["grant-role", "a@b.test", "--role", "owner", "--password-stdin"], 2, "add --create"),
    (["grant-role", "nobody-here@b.test", "--role", "owner"], 1, "no account 'nobody-here@b.test' in the Firebase "
                                                                  "Auth emulator at"),
    (["grant-role", "no-such-uid", "--role", "owner", "--create"], 2, "named by its email address"),
    (["grant-role", "new@b.test", "--role", "owner", "--create"], 2, "a new account needs a password"),
    (["create-user", "not-an-email@", "--password-stdin"], 2, "not-an-email@"),
    (["whois", "nobody-here"], 1, "no account 'nobody-here'"),
    (["whois", "x", "--project", "demo-coditect", "--auth-emulator", "http://127.0.0.1:9099"], 2, "HOST:PORT"),
])
def test_bad_role_commands_get_a_sentence_never_a_traceback(auth_emulator, stack, args, status, says):
    env = _env(FIREBASE_AUTH_EMULATOR_HOST=auth_emulator.host)
    done = licensectl(*args, *([] if "--project" in args else ["--project", stack.project_id]), env=env,
                      stdin="secret-password\n")
    assert (done.returncode, done.stdout) == (status, ""), done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr


def test_without_a_project_the_dev_stacks_emulator_is_used(auth_emulator, checked_server, stack, rt, tmp_path):
    """What ./scripts/dev writes to stack.json is enough: its project and its Auth emulator."""
    (tmp_path / "stack.json").write_text(json.dumps({
        "base_url": checked_server.base_url, "project_id": stack.project_id,
        "firebase_auth_emulator_host": auth_emulator.host,
        "env": {"FIREBASE_AUTH_EMULATOR_HOST": auth_emulator.host, "ADMIN_CHECK_ACCOUNTS": "1"},
    }))
    # the account licensectl's own dev-stack token names (./scripts/dev seeds it)
    auth_emulator.put_user("licensectl", email="operator@example.com", password="dev-operator-pass",
                           claims={"role": "owner"})
    env = _env(DEV_STATE_DIR=str(tmp_path))
    tenant = f"dev-{secrets.token_hex(3)}"
    rt.provisioning.create_tenant("Dev", tenant_id=tenant, actor="tests")
    email, password = _new_email("dev-admin"), secrets.token_urlsafe(12)
    uid = auth_emulator.sign_up(email, password)["localId"]

    granted = ok(licensectl("grant-role", email, "--role", "admin", "--tenant", tenant, env=env)).stdout
    assert f"in: the Firebase Auth emulator at {auth_emulator.host} (project {stack.project_id})" in granted
    assert _stored_claims(auth_emulator, uid) == {"role": "admin", "tenant": tenant}
    assert "tenants" in json.loads(ok(licensectl("tenants", "--json", env=env)).stdout)  # the stack's owner token

    # an operator pointed at another environment names its Firebase project: no silent fallback here
    elsewhere = licensectl("whois", email, env={**env, "LICENSECTL_BASE_URL": "https://example.invalid/{name}"})
    assert elsewhere.returncode == 2 and "name its project with --project" in elsewhere.stderr
    real = licensectl("whois", email, "--project", "demo-coditect", env=env)
    assert real.returncode == 2 and "exists only in an emulator" in real.stderr


def test_sign_in_prints_an_id_token_the_admin_function_accepts(auth_emulator, checked_server, stack):
    env = _env(FIREBASE_AUTH_EMULATOR_HOST=auth_emulator.host)
    email, password = _new_email("grace"), secrets.token_urlsafe(12)
    ok(licensectl("grant-role", email, "--role", "owner", "--create", "--password-stdin", "--project",
                  stack.project_id, env=env, stdin=password))
    token = ok(licensectl("sign-in", email, "--password-stdin", env=env, stdin=password)).stdout.strip()
    assert _claims(token)["email"] == email and _claims(token)["role"] == "owner"
    tenants = ok(licensectl("tenants", "--base-url", checked_server.base_url, "--json",
                            env={**env, "LICENSECTL_TOKEN": token}))
    assert isinstance(json.loads(tenants.stdout), (list, dict))

    wrong = licensectl("sign-in", email, "--password-stdin", env=env, stdin="not-the-password")
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert "wrong" in wrong.stderr and "failed" in wrong.stderr
    nobody = licensectl("sign-in", email, env=env)  # no password given at all
    assert nobody.returncode == 2 and "--password-stdin" in nobody.stderr
