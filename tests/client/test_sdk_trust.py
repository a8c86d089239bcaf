"""What the SDK trusts: pinned roots only, a borrow the server has ended is not resumed,
no plain http to a remote server, a return that cannot leave a usable token behind.

The forgery: a licensee writes the jwks cache file with a root key of their own, and a
borrow file holding a token certified under that key (tier "enterprise", ten years).
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from hand_signed import Root, lease_claims, lease_token
from sdk_processes import python_child, run_cli

from coditect_license import (
    ApiClient,
    LeaseOptions,
    LeaseState,
    License,
    NetworkError,
    RetryPolicy,
    StaticTokenProvider,
    TokenExpired,
    TokenInvalid,
    TrustNotPinned,
    borrows,
    jwks,
)
from coditect_license.errors import SessionExpired

TEN_YEARS_S = 10 * 365 * 86400
FORGER_HW = "hw-forger"


def _forge_borrow(server: str, license_key: str, license_id: str) -> str:
    """Write the forger's jwks cache file and borrow file; the forged token."""
    root, now = Root.new(), int(time.time())
    jwks.cache_file_for(server).parent.mkdir(parents=True, exist_ok=True)
    jwks.cache_file_for(server).write_text(json.dumps({"fetched_at": now, "jwks": root.jwks()}))
    claims = lease_claims(iat=now, exp=now + TEN_YEARS_S, hardware_id=FORGER_HW, borrowed=True, tier="enterprise",
                          features=["everything"], session_id="sess-forged", license_id=license_id)
    token = lease_token(root, claims, cert_iat=now - 60, cert_exp=now + TEN_YEARS_S, lease_max_s=TEN_YEARS_S)
    path = borrows.borrow_file(license_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"server": server, "session_id": "sess-forged", "token": token,
                                "license_id": license_id, "hardware_id": FORGER_HW,
                                "borrowed_until": "2036-01-01T00:00:00Z"}))
    return token


def test_a_forged_borrow_is_refused_offline(server, make_license, trusted_roots):
    lic = make_license(seats=1)  # borrowing not even allowed
    _forge_borrow(server, lic.key, lic.license_id)

    with pytest.raises(TrustNotPinned, match="trusted_roots"):
        License.offline(lic.key, hardware_id=FORGER_HW)
    with pytest.raises(TokenInvalid, match="not one of the trusted roots") as refused:
        License.offline(lic.key, hardware_id=FORGER_HW, trusted_roots=trusted_roots)
    assert not isinstance(refused.value, TokenExpired)


def test_a_forged_borrow_is_not_resumed_while_the_server_answers(server, make_license, user, trusted_roots):
    lic = make_license(seats=1, tier="basic")
    _forge_borrow(server, lic.key, lic.license_id)

    # pinned: the forged token fails offline verification; a real seat is taken
    with License(lic.key, server=server, token_provider=user.provider(), hardware_id=FORGER_HW,
                 trusted_roots=trusted_roots) as pinned:
        assert pinned.state == LeaseState.ACTIVE and pinned.session_id != "sess-forged"
        assert (pinned.tier, pinned.features, pinned.claims.borrowed) == ("basic", [], False)
    # unpinned: the server, asked about the stored session, knows none: the file is forgotten
    with License(lic.key, server=server, token_provider=user.provider(), hardware_id=FORGER_HW) as unpinned:
        assert unpinned.state == LeaseState.ACTIVE and unpinned.session_id != "sess-forged"
        assert (unpinned.tier, unpinned.claims.borrowed) == ("basic", False)
    assert not borrows.borrow_file(lic.key).exists()


def test_a_forged_borrow_is_not_used_while_the_server_is_down(own_server, make_license, user, trusted_roots):
    lic = make_license(seats=1)
    _forge_borrow(own_server.base_url, lic.key, lic.license_id)
    own_server.stop()

    pinned = License(lic.key, server=own_server.base_url, token_provider=user.provider(), hardware_id=FORGER_HW,
                     trusted_roots=trusted_roots, options=LeaseOptions(retry=RetryPolicy(attempts=1)))
    with pytest.raises(NetworkError):  # the forgery ignored, and no server to take a seat from
        pinned.acquire()
    unpinned = License(lic.key, server=own_server.base_url, token_provider=user.provider(), hardware_id=FORGER_HW,
                       options=LeaseOptions(retry=RetryPolicy(attempts=1)))
    with pytest.raises(TrustNotPinned, match="trusted_roots"):
        unpinned.acquire()
    assert pinned.state == unpinned.state == LeaseState.IDLE


def test_cli_verify_refuses_the_forgery(server, make_license, trusted_roots):
    lic = make_license(seats=1)
    forged = _forge_borrow(server, lic.key, lic.license_id)

    unpinned = run_cli("verify", forged, "--server", server)
    assert unpinned.returncode == 23 and "--trusted-root" in unpinned.stderr and "TRUST_NOT_PINNED" in unpinned.stderr
    # "=": a thumbprint may start with "-", which argparse would take for an option
    flags = [f"--trusted-root={root}" for root in trusted_roots]
    pinned = run_cli("verify", forged, "--server", server, *flags)
    assert pinned.returncode == 18 and "not one of the trusted roots" in pinned.stderr
    from_env = run_cli("verify", forged, "--server", server, "--offline",
                       env={"CODITECT_TRUSTED_ROOTS": ",".join(trusted_roots)})
    assert from_env.returncode == 18 and "not one of the trusted roots" in from_env.stderr
    bad_pin = run_cli("verify", forged, "--server", server, "--trusted-root", "not-a-thumbprint")
    assert bad_pin.returncode == 2 and "thumbprint" in bad_pin.stderr


def test_a_borrow_confirmed_by_the_server_resumes_without_pins(server, make_license, user):
    lic = make_license(seats=1, lease_ttl_s=30, max_borrow_s=3600)
    borrowed = License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-confirmed").acquire()
    claims = borrowed.borrow(1800)
    borrowed.close()

    with License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-confirmed") as again:
        assert again.state == LeaseState.BORROWED and again.session_id == claims.session_id
        assert again.claims.borrowed and again.expires_at == claims.expires_at  # confirming never shortens it
    assert not jwks.cache_file_for(server).exists()  # unpinned: nothing written, nothing read


def _force_release(server, id_token, lic, session_id):
    """A tenant admin ends the session through the admin function."""
    admin_token = id_token("sdk-admin", role="admin", tenant=lic.tenant_id)
    answer = httpx.delete(f"{server}/admin/licenses/{lic.license_id}/sessions/{session_id}", timeout=10,
                          headers={"Authorization": f"Bearer {admin_token}"})
    assert answer.status_code == 200, answer.text


def _anchor(pinned: bool, trusted_roots) -> dict:
    return {"trusted_roots": trusted_roots} if pinned else {}


def _borrowed_then_closed(lic, server, user, hardware_id: str, anchor: dict):
    """Acquire, borrow for half an hour and close (the borrow stays stored); its claims."""
    lease = License(lic.key, server=server, token_provider=user.provider(), hardware_id=hardware_id,
                    **anchor).acquire()
    claims = lease.borrow(1800)
    lease.close()
    return claims


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "unpinned"])
def test_a_borrow_the_admin_ended_is_not_resumed_while_the_server_answers(server, make_license, user, id_token,
                                                                          trusted_roots, pinned):
    lic = make_license(seats=2, lease_ttl_s=30, max_borrow_s=3600)
    anchor = _anchor(pinned, trusted_roots)
    claims = _borrowed_then_closed(lic, server, user, "hw-laptop", anchor)

    _force_release(server, id_token, lic, claims.session_id)

    if pinned:  # the file still verifies offline: no offline scheme can revoke a copy ...
        assert License.offline(lic.key, hardware_id="hw-laptop", **anchor).session_id == claims.session_id
    # ... but with the server reachable, the ended session is not resumed: a seat is acquired normally
    with License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-laptop", **anchor) as again:
        assert again.state == LeaseState.ACTIVE and again.session_id != claims.session_id
        assert not again.claims.borrowed
    assert not borrows.borrow_file(lic.key).exists()


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "unpinned"])
def test_a_returned_borrow_copied_back_is_not_resumed_while_the_server_answers(server, make_license, user,
                                                                               trusted_roots, pinned):
    lic = make_license(seats=2, lease_ttl_s=30, max_borrow_s=3600)
    anchor = _anchor(pinned, trusted_roots)
    lease = License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-copier",
                    **anchor).acquire()
    claims = lease.borrow(1800)
    path = borrows.borrow_file(lic.key)
    copy = path.read_bytes()
    assert lease.return_borrow() == "returned"
    assert not path.exists()

    path.write_bytes(copy)  # the licensee puts back a copy taken before the return

    with License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-copier", **anchor) as again:
        assert again.state == LeaseState.ACTIVE and again.session_id != claims.session_id
    assert not path.exists()
    with pytest.raises(SessionExpired):  # the server's word on the returned session
        ApiClient(server, StaticTokenProvider(user.token())).post("heartbeat", {"session_id": claims.session_id})


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "unpinned"])
def test_another_users_borrow_on_this_machine_is_left_to_them(server, make_license, user, other_user,
                                                              trusted_roots, pinned):
    lic = make_license(seats=2, lease_ttl_s=30, max_borrow_s=3600)
    anchor = _anchor(pinned, trusted_roots)
    claims = _borrowed_then_closed(lic, server, user, "hw-shared", anchor)

    with License(lic.key, server=server, token_provider=other_user.provider(), hardware_id="hw-shared",
                 **anchor) as theirs:
        assert theirs.state == LeaseState.ACTIVE and theirs.session_id != claims.session_id
    assert borrows.borrow_file(lic.key).exists()  # still the first user's


class _BorrowFileAtReturn(httpx.HTTPTransport):
    """Notes whether the borrow file still exists when the return request leaves."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.seen = []

    def handle_request(self, request):
        if request.url.path.endswith("/borrow/return"):
            self.seen.append(self.path.exists())
        return super().handle_request(request)


def test_an_early_return_deletes_the_stored_token_before_asking_the_server(server, make_license, user):
    lic = make_license(seats=1, lease_ttl_s=30, max_borrow_s=3600)
    transport = _BorrowFileAtReturn(borrows.borrow_file(lic.key))
    lease = License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-return",
                    options=LeaseOptions(transport=transport)).acquire()
    lease.borrow(600)
    assert borrows.borrow_file(lic.key).exists()

    assert lease.return_borrow() == "returned"

    assert transport.seen == [False]


def test_cli_return_deletes_the_stored_token_even_if_the_server_is_gone(own_server, make_license, user):
    lic = make_license(seats=1, lease_ttl_s=30, max_borrow_s=3600)
    env = {"CODITECT_LICENSE_KEY": lic.key, "CODITECT_ID_TOKEN": user.token()}
    borrowed = run_cli("borrow", "--duration", "10m", "--server", own_server.base_url, env=env)
    assert borrowed.returncode == 0, borrowed.stderr
    own_server.stop()

    returned = run_cli("return", "--timeout", "2", env=env)

    assert returned.returncode == 3 and "cannot reach the license server" in returned.stderr
    assert not borrows.borrow_file(lic.key).exists()


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.3:8080", "http://127.0.0.1.example.com",
                                 "http://{name}-abc.example.com", "ftp://127.0.0.1", "example.com"])
def test_plain_http_to_a_remote_server_is_refused(url):
    with pytest.raises(ValueError, match="https://"):
        License("CDT-1111-2222-3333-4444", server=url)
    with pytest.raises(ValueError, match="https://"):
        ApiClient(url, None)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://127.8.9.10", "http://localhost:8080/",
                                 "http://[::1]:8080", "https://licenses.example.com",
                                 "https://{name}-abc123-uc.a.run.app"])
def test_https_and_loopback_http_are_accepted(url):
    assert License("CDT-1111-2222-3333-4444", server=url).server == url.rstrip("/")


def test_cli_refuses_plain_http_to_a_remote_server():
    refused = run_cli("acquire", "--server", "http://example.com", "--key", "CDT-1111-2222-3333-4444",
                      "--token", "t")
    assert refused.returncode == 2 and "https://" in refused.stderr and "Traceback" not in refused.stderr


def test_a_license_without_pins_warns_once_per_process():
    make = ("import logging; logging.basicConfig(); from coditect_license import License; "
            "[License('CDT-1111-2222-3333-4444', server='http://127.0.0.1:9'{pins}) for _ in range(3)]")
    unpinned = python_child(make.format(pins=""))
    pinned = python_child(make.format(pins=", trusted_roots=['" + "A" * 43 + "']"))

    assert unpinned.communicate(timeout=60)[1].count("no trusted root keys are pinned") == 1
    assert "no trusted root keys are pinned" not in pinned.communicate(timeout=60)[1]
