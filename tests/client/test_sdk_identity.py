"""ID tokens: providers, refresh before expiry (the real Firebase Auth emulator), the CLI's login."""

from __future__ import annotations

import base64
import json
import secrets
import threading

import pytest
from sdk_probes import seats_used, wait_for
from sdk_processes import run_cli

from coditect_license import AuthError, FirebaseAuthProvider, LeaseState, License


def _signed_up(auth_emulator):
    email, password = f"dev-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(12)
    return email, password, auth_emulator.sign_up(email, password)


def test_a_lease_outlives_its_id_tokens_the_provider_refreshes_them(auth_emulator, server, make_license):
    email, password, account = _signed_up(auth_emulator)
    rotated = []
    # Emulator ID tokens live an hour: a margin of 3598 s makes every token "about to
    # expire" after 2 s, so this lease goes through several refreshes in a few seconds.
    provider = FirebaseAuthProvider.for_emulator(auth_emulator.host, refresh_margin_s=3598,
                                                 on_refresh_token=rotated.append)
    provider.sign_in_password(email, password)
    assert provider.uid == account["localId"] and provider.email == email
    lic = make_license(seats=1, lease_ttl_s=10, heartbeat_interval_s=1)
    with License(lic.key, server=server, token_provider=provider, hardware_id="hw-firebase") as lease:
        assert lease.claims.uid == account["localId"]  # the server took the emulator's token
        wait_for(lambda: provider.refreshes >= 2 and lease.heartbeats >= 4, 12, "refreshes under heartbeats")
        assert lease.state == LeaseState.ACTIVE and lease.last_error is None
    assert rotated and rotated[0]  # the first refresh token was handed to the keeper


def test_custom_token_sign_in(auth_emulator, server, make_license):
    def b64(value) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    uid = f"custom-{secrets.token_hex(4)}"
    # the emulator takes unsigned custom tokens (a real project: signed by the Admin SDK)
    custom = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'uid': uid, 'iat': 0, 'exp': 2 ** 31, 'aud': 'https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit'})}."
    provider = FirebaseAuthProvider.for_emulator(auth_emulator.host)
    provider.sign_in_custom_token(custom)
    lic = make_license(seats=1, lease_ttl_s=30)
    with License(lic.key, server=server, token_provider=provider, hardware_id="hw-custom") as lease:
        assert lease.claims.uid == uid


def test_refresh_failures_are_reported_never_raised_while_the_token_lasts(auth_emulator):
    email, password, _ = _signed_up(auth_emulator)
    errors = []
    provider = FirebaseAuthProvider.for_emulator(auth_emulator.host, on_error=errors.append, attempts=2)
    provider.sign_in_password(email, password)
    current = provider.get_token()
    provider.securetoken_url = "http://127.0.0.1:9"  # the refresh endpoint is unreachable

    assert provider.get_token(force_refresh=True) == current  # still valid: keep going
    assert len(errors) == 1 and provider.last_error is errors[0] and not errors[0].permanent

    with pytest.raises(AuthError) as revoked:
        FirebaseAuthProvider.for_emulator(auth_emulator.host, refresh_token="not-a-refresh-token").get_token()
    assert revoked.value.permanent
    with pytest.raises(AuthError) as wrong:
        FirebaseAuthProvider.for_emulator(auth_emulator.host).sign_in_password(email, "wrong password")
    assert wrong.value.permanent and "INVALID_PASSWORD" in str(wrong.value)


def test_a_rejected_id_token_is_refreshed_once_and_the_call_goes_through(server, make_license, user):
    calls = []

    def provider(force_refresh: bool = False) -> str:
        calls.append(force_refresh)
        return user.token() if force_refresh else "an-expired-token"

    lic = make_license(seats=1, lease_ttl_s=30)
    with License(lic.key, server=server, token_provider=provider, hardware_id="hw-401") as lease:
        assert lease.state == LeaseState.ACTIVE
    assert calls[:2] == [False, True]


def test_an_identity_outage_is_a_retry_not_a_crash(server, make_license, user):
    broken = threading.Event()

    def provider() -> str:
        if broken.is_set():
            raise RuntimeError("identity provider down")
        return user.token()

    lic = make_license(seats=1, lease_ttl_s=10, heartbeat_interval_s=1)
    with License(lic.key, server=server, token_provider=provider, hardware_id="hw-idp") as lease:
        broken.set()
        wait_for(lambda: lease.state == LeaseState.RETRYING, 5, "RETRYING while no token can be had")
        assert lease.last_error.code == "AUTH_FAILED" and lease.valid
        broken.clear()
        wait_for(lambda: lease.state == LeaseState.ACTIVE, 5, "ACTIVE once tokens come back")


def test_the_sdk_takes_a_static_id_token_from_the_environment_like_the_cli(server, make_license, user,
                                                                           monkeypatch):
    lic = make_license(seats=1, lease_ttl_s=30)
    monkeypatch.setenv("CODITECT_ID_TOKEN", user.token())
    with License(lic.key, server=server, hardware_id="hw-env-token") as lease:  # no token_provider
        assert lease.claims.uid == user.uid

    monkeypatch.setenv("CODITECT_ID_TOKEN", "not-a-token")  # a token_provider the tool passes wins
    with License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-env-token") as lease:
        assert lease.claims.uid == user.uid


def test_cli_login_stores_the_refresh_token_privately_and_uses_it(auth_emulator, server, make_license, sdk_dirs):
    email, password, account = _signed_up(auth_emulator)
    denied = run_cli("login", "--auth-emulator", auth_emulator.host, "--email", email, "--password-stdin",
                     input="wrong\n")
    assert denied.returncode == 5 and "INVALID_PASSWORD" in denied.stderr

    login = run_cli("login", "--auth-emulator", auth_emulator.host, "--email", email, "--password-stdin",
                    input=password + "\n")
    assert login.returncode == 0, login.stderr
    credentials = sdk_dirs[1] / "credentials.json"
    assert credentials.stat().st_mode & 0o777 == 0o600 and credentials.parent.stat().st_mode & 0o777 == 0o700
    stored = json.loads(credentials.read_text())
    assert stored["refresh_token"] and stored["uid"] == account["localId"] and password not in credentials.read_text()

    lic = make_license(seats=1, lease_ttl_s=30)
    env = {"CODITECT_LICENSE_SERVER": server, "CODITECT_LICENSE_KEY": lic.key}
    acquired = run_cli("acquire", "--json", env=env)  # no token given: the stored sign-in is used
    assert acquired.returncode == 0, acquired.stderr
    assert json.loads(acquired.stdout)["claims"]["uid"] == account["localId"]
    assert run_cli("release", env=env).returncode == 0
    assert run_cli("logout").returncode == 0 and not credentials.exists()
    signed_out = run_cli("acquire", env=env)
    assert signed_out.returncode == 5 and "not signed in" in signed_out.stderr
    assert seats_used(server, lic.key, f"{auth_emulator.sign_up('x' + email, password)['idToken']}") == 0
