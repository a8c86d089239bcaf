"""Borrowing: check a seat out, run with no network, give it back early."""

from __future__ import annotations

import json

import pytest
from sdk_probes import seats_used, wait_for
from sdk_processes import run_cli

from coditect_license import (
    BorrowNotAllowed,
    InvalidRequest,
    LeaseState,
    License,
    NoLease,
    NoSeatAvailable,
    TokenInvalid,
    TrustNotPinned,
)


def test_borrow_then_the_server_stops_and_the_tool_runs_offline(own_server, make_license, user, sdk_dirs,
                                                                trusted_roots):
    lic = make_license(seats=1, lease_ttl_s=10, heartbeat_interval_s=2, max_borrow_s=3600)
    lease = License(lic.key, server=own_server.base_url, token_provider=user.provider(),
                    trusted_roots=trusted_roots).acquire()
    claims = lease.borrow(600)
    assert lease.state == LeaseState.BORROWED and claims.borrowed and claims.session_id == lease.session_id
    assert 595 <= claims.expires_at - claims.issued_at <= 600
    stored = list((sdk_dirs[0] / "borrows").iterdir())
    assert len(stored) == 1 and stored[0].stat().st_mode & 0o777 == 0o600
    assert lic.key not in stored[0].read_text()  # the file holds the token, never the key
    beats = lease.heartbeats
    lease.close()  # a borrowed seat is not released by the tool's exit
    assert lease.heartbeats == beats

    own_server.stop()  # from here on, no server at all

    # the tool starts again, offline: the stored borrow, verified under the pinned roots, is its lease
    with License(lic.key, server=own_server.base_url, token_provider=user.provider(),
                 trusted_roots=trusted_roots) as offline:
        assert offline.state == LeaseState.BORROWED and offline.valid
        assert offline.session_id == claims.session_id and offline.features == list(claims.features)
    assert License.offline(lic.key, trusted_roots=trusted_roots).session_id == claims.session_id
    pins = {"CODITECT_TRUSTED_ROOTS": ",".join(trusted_roots)}
    status = run_cli("status", "--key", lic.key, "--server", own_server.base_url, "--offline", "--json", env=pins)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["borrow"]["valid"] is True
    # the borrow token is bound to this machine
    with pytest.raises(TokenInvalid, match="another machine"):
        License.offline(lic.key, hardware_id="a-copy-elsewhere", trusted_roots=trusted_roots)
    # and with no pinned roots nothing stored here is trusted offline: refused, saying what is missing
    with pytest.raises(TrustNotPinned, match="trusted_roots"):
        License(lic.key, server=own_server.base_url, token_provider=user.provider()).acquire()
    with pytest.raises(TrustNotPinned, match="trusted_roots"):
        License.offline(lic.key)
    unpinned = run_cli("status", "--key", lic.key, "--server", own_server.base_url, "--offline")
    assert unpinned.returncode == 23 and "--trusted-root" in unpinned.stderr

    own_server.start()
    other = License(lic.key, server=own_server.base_url, token_provider=user.provider(), hardware_id="desk")
    with pytest.raises(NoSeatAvailable):
        other.acquire()  # the borrowed seat stayed held with no heartbeat


def test_closing_a_borrowed_lease_says_it_released_nothing(server, make_license, user, other_user):
    lic = make_license(seats=1, lease_ttl_s=10, max_borrow_s=3600)
    lease = License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-kept").acquire()
    lease.borrow(600)

    assert lease.close() is False  # the borrow keeps the seat
    assert lease.state == LeaseState.CLOSED and lease.borrowed_until is not None and lease.last_error is None
    assert seats_used(server, lic.key, user.token()) == 1
    with pytest.raises(NoSeatAvailable):
        License(lic.key, server=server, token_provider=other_user.provider(), hardware_id="desk").acquire()
    next_run = License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-kept").acquire()
    assert next_run.state == LeaseState.BORROWED and next_run.return_borrow() == "returned"


def test_returning_a_borrow_early_frees_the_seat(server, make_license, user, other_user, trusted_roots):
    lic = make_license(seats=1, lease_ttl_s=10, max_borrow_s=3600)
    lease = License(lic.key, server=server, token_provider=user.provider(), hardware_id="laptop").acquire()
    lease.borrow(1800)
    with pytest.raises(NoSeatAvailable):
        License(lic.key, server=server, token_provider=other_user.provider(), hardware_id="desk").acquire()

    assert lease.return_borrow() == "returned"

    assert lease.state == LeaseState.CLOSED and seats_used(server, lic.key, user.token()) == 0
    with License(lic.key, server=server, token_provider=other_user.provider(), hardware_id="desk") as other:
        assert other.state == LeaseState.ACTIVE
    with pytest.raises(NoLease):
        License.offline(lic.key, trusted_roots=trusted_roots)


def test_borrowing_limits_are_typed_errors(server, make_license, user):
    not_allowed = make_license(seats=1, lease_ttl_s=30)
    with License(not_allowed.key, server=server, token_provider=user.provider(), hardware_id="hw") as lease:
        with pytest.raises(BorrowNotAllowed):
            lease.borrow(60)
        assert lease.state == LeaseState.ACTIVE  # still held, still heartbeating
    limited = make_license(seats=1, lease_ttl_s=30, max_borrow_s=600)
    with License(limited.key, server=server, token_provider=user.provider(), hardware_id="hw") as lease:
        with pytest.raises(InvalidRequest) as too_long:
            lease.borrow(601)
        assert too_long.value.details["max_borrow_s"] == 600


def test_a_borrow_that_ends_while_running_is_lost_then_retaken(server, make_license, user):
    lic = make_license(seats=1, lease_ttl_s=10, heartbeat_interval_s=2, max_borrow_s=3600)
    events = []
    with License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-short-borrow",
                 on_expiring=lambda lease, left: events.append("expiring"),
                 on_lost=lambda lease, error: events.append("lost"),
                 on_regained=lambda lease: events.append("regained")) as lease:
        assert lease.borrow(11).borrowed  # just over the 10 s lease: a borrow (a shorter one changes nothing)
        # the borrow ends at its exp (no grace on this license): lost, then a normal seat again
        wait_for(lambda: events[-1:] == ["regained"], 16, "the seat taken again after the borrow")
        assert events == ["expiring", "lost", "regained"] and lease.state == LeaseState.ACTIVE
        assert not lease.claims.borrowed


def test_cli_borrow_status_and_return(server, make_license, user):
    lic = make_license(seats=1, lease_ttl_s=10, max_borrow_s=7200)
    env = {"CODITECT_LICENSE_SERVER": server, "CODITECT_LICENSE_KEY": lic.key, "CODITECT_ID_TOKEN": user.token()}
    too_long = run_cli("borrow", "--duration", "3h", env=env)
    assert too_long.returncode == 16 and "at most 7200 s" in too_long.stderr
    assert seats_used(server, lic.key, user.token()) == 0  # the seat taken to borrow went back
    borrowed = run_cli("borrow", "--duration", "1h", env=env)
    assert borrowed.returncode == 0, borrowed.stderr
    assert "seat borrowed until" in borrowed.stdout
    status = run_cli("status", env=env)
    assert status.returncode == 0 and "borrow: valid" in status.stdout and "1/1 seats in use" in status.stdout
    again = run_cli("borrow", "--duration", "10m", env=env)
    assert again.returncode == 22 and "already has a borrowed seat" in again.stderr
    returned = run_cli("return", env=env)
    assert returned.returncode == 0 and "returned" in returned.stdout
    assert run_cli("return", env=env).returncode == 20  # nothing left to return
    assert seats_used(server, lic.key, user.token()) == 0
