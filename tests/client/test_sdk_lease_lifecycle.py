"""A seat held by the SDK: acquire, heartbeats, release on exit, signals, crashes, outages."""

from __future__ import annotations

import signal
import textwrap
import threading
import time

import pytest
from lease_verifier import verify_lease_token
from sdk_probes import seats_used, wait_for
from sdk_processes import python_child

from coditect_license import (
    LeaseState,
    License,
    LicenseNotFound,
    LicenseSuspended,
    NoSeatAvailable,
)


def test_acquire_heartbeats_then_release_on_exit(server, make_license, user, rt):
    lic = make_license(seats=2, lease_ttl_s=10, heartbeat_interval_s=1, tier="pro", features=("build", "debug"))
    states = []
    with License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-lifecycle",
                 on_state_change=lambda lease, old, new: states.append(new)) as lease:
        assert lease.state == LeaseState.ACTIVE and lease.valid
        assert (lease.license_id, lease.tier, lease.features) == (lic.license_id, "pro", ["build", "debug"])
        assert lease.seats == {"used": 1, "max": 2} and lease.heartbeat_interval_s == 1
        session, first_exp = lease.session_id, lease.expires_at
        # the independent test verifier agrees with the SDK's own
        jwks = rt.root_signer.public_jwks()
        assert verify_lease_token(lease.token, {"keys": jwks}, now_s=int(time.time()))["sub"] == session
        wait_for(lambda: lease.heartbeats >= 3, 8, "three heartbeats")
        assert lease.session_id == session and lease.state == LeaseState.ACTIVE
        assert lease.expires_at > first_exp  # each beat brought a fresh token
        assert seats_used(server, lic.key, user.token()) == 1
    assert lease.state == LeaseState.CLOSED and not lease.valid
    assert seats_used(server, lic.key, user.token()) == 0  # released, not left to expire
    assert rt.store.get_session(session).end_reason == "released"
    assert states[:2] == [LeaseState.ACQUIRING, LeaseState.ACTIVE] and states[-1] == LeaseState.CLOSED


def test_errors_are_typed_and_a_full_license_says_when_to_retry(server, make_license, user, other_user):
    lic = make_license(seats=1, lease_ttl_s=30)
    with License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-a"):
        with pytest.raises(NoSeatAvailable) as full:
            License(lic.key, server=server, token_provider=other_user.provider(), hardware_id="hw-b").acquire()
    assert (full.value.seats_used, full.value.seats_max) == (1, 1)
    assert full.value.status == 409 and 0 < full.value.retry_after <= 30
    with pytest.raises(LicenseNotFound):
        License("CDT-0000-0000-0000-0000", server=server, token_provider=user.provider()).acquire()


def test_a_refused_acquire_keeps_its_error(server, make_license, user, other_user):
    lic = make_license(seats=1, lease_ttl_s=30)
    with License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-a"):
        refused = License(lic.key, server=server, token_provider=other_user.provider(), hardware_id="hw-b")
        with pytest.raises(NoSeatAvailable) as full:
            refused.acquire()
    assert refused.last_error is full.value and refused.state == LeaseState.IDLE

    suspended = License(make_license(suspended=True).key, server=server, token_provider=user.provider())
    with pytest.raises(LicenseSuspended) as forbidden:
        suspended.acquire()
    assert suspended.last_error is forbidden.value and suspended.state == LeaseState.IDLE


def test_waiting_for_a_seat_takes_it_when_the_holder_leaves(server, make_license, user, other_user):
    lic = make_license(seats=1, lease_ttl_s=30)
    holder = License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-a").acquire()
    threading.Timer(1.5, holder.close).start()
    started = time.monotonic()
    with License(lic.key, server=server, token_provider=other_user.provider(), hardware_id="hw-b").acquire(
            wait_s=20) as waiter:
        assert waiter.state == LeaseState.ACTIVE
    assert 1.0 < time.monotonic() - started < 10


CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from coditect_license import License
    {setup}
    lease = License(os.environ["KEY"], server=os.environ["SERVER"], token_provider=os.environ["ID_TOKEN"],
                    hardware_id="hw-child").acquire()
    print(lease.session_id, flush=True)
    time.sleep(60)
""")


def _child(server, lic, user, setup=""):
    child = python_child(CHILD.format(setup=setup),
                         env={"KEY": lic.key, "SERVER": server, "ID_TOKEN": user.token()})
    session = child.stdout.readline().strip()
    assert session, child.stderr.read()
    return child, session


def test_sigterm_of_a_child_releases_its_seat(server, make_license, user, rt):
    lic = make_license(seats=1, lease_ttl_s=60)
    child, session = _child(server, lic, user)
    assert seats_used(server, lic.key, user.token()) == 1

    child.send_signal(signal.SIGTERM)

    assert child.wait(20) == -signal.SIGTERM  # it still dies of SIGTERM, as without the SDK
    assert seats_used(server, lic.key, user.token()) == 0
    assert rt.store.get_session(session).end_reason == "released"


def test_a_host_applications_own_sigterm_handler_still_runs(server, make_license, user, rt):
    # The host's handler (installed before the SDK) decides to exit with 3; atexit releases.
    setup = "signal.signal(signal.SIGTERM, lambda *a: (print('host handler', flush=True), sys.exit(3)))"
    lic = make_license(seats=1, lease_ttl_s=60)
    child, session = _child(server, lic, user, setup=setup)

    child.send_signal(signal.SIGTERM)

    assert child.wait(20) == 3
    assert child.stdout.read().strip() == "host handler"
    assert seats_used(server, lic.key, user.token()) == 0
    assert rt.store.get_session(session).end_reason == "released"


def test_sigint_releases_through_keyboard_interrupt(server, make_license, user, rt):
    lic = make_license(seats=1, lease_ttl_s=60)
    child, session = _child(server, lic, user)

    child.send_signal(signal.SIGINT)

    # Python dies of SIGINT after an uncaught KeyboardInterrupt; atexit released the seat first
    assert child.wait(20) == -signal.SIGINT and "KeyboardInterrupt" in child.stderr.read()
    assert rt.store.get_session(session).end_reason == "released"


def test_sigkill_leaves_a_lease_that_frees_itself_at_expiry(server, make_license, user, other_user):
    lic = make_license(seats=1, lease_ttl_s=10, heartbeat_interval_s=2)
    child, _ = _child(server, lic, user)
    killed_at = time.monotonic()

    child.send_signal(signal.SIGKILL)
    child.wait(10)

    other = License(lic.key, server=server, token_provider=other_user.provider(), hardware_id="hw-next")
    with pytest.raises(NoSeatAvailable) as full:
        other.acquire()
    assert full.value.retry_after <= 10
    other.acquire(wait_s=20)  # waits for the dead child's lease to run out
    try:
        assert other.state == LeaseState.ACTIVE
        assert 7 <= time.monotonic() - killed_at <= 16
    finally:
        other.close()


def test_server_restart_mid_lease_heartbeats_retry_then_recover(own_server, make_license, user):
    lic = make_license(seats=1, lease_ttl_s=20, heartbeat_interval_s=1)
    with License(lic.key, server=own_server.base_url, token_provider=user.provider(),
                 hardware_id="hw-restart") as lease:
        session = lease.session_id
        wait_for(lambda: lease.heartbeats >= 1, 5, "a first heartbeat")

        own_server.stop()
        wait_for(lambda: lease.state == LeaseState.RETRYING, 6, "RETRYING while the server is down")
        assert lease.valid and lease.last_error.code == "NETWORK"
        own_server.start()

        wait_for(lambda: lease.state == LeaseState.ACTIVE, 20, "ACTIVE again after the restart")
        beats = lease.heartbeats
        wait_for(lambda: lease.heartbeats > beats, 5, "heartbeats after recovery")
        assert lease.session_id == session and lease.reacquisitions == 0  # the same lease, kept alive
    assert seats_used(own_server.base_url, lic.key, user.token()) == 0


def test_redis_flushed_the_lease_is_restored_and_keeps_its_session(server, make_license, user, rt):
    lic = make_license(seats=2, lease_ttl_s=10, heartbeat_interval_s=1)
    regained = []
    with License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-flush",
                 on_regained=regained.append) as lease:
        session = lease.session_id

        rt.redis.flushdb()  # Redis lost everything: the server rebuilds the table from Firestore

        beats = lease.heartbeats
        wait_for(lambda: lease.heartbeats > beats + 1, 8, "heartbeats after the loss")
        assert lease.session_id == session and lease.reacquisitions == 0 and lease.state == LeaseState.ACTIVE
        assert regained == []
        assert seats_used(server, lic.key, user.token()) == 1
    events = [e["type"] for e in rt.store.events_for_session(session)]
    assert "revived" not in events  # its token proved the lease: extended, not revived


def test_a_forced_release_is_lost_then_regained(server, make_license, user, rt):
    """An admin force-releases the session: 410 on the next beat, the SDK takes a seat again."""
    lic = make_license(seats=1, lease_ttl_s=10, heartbeat_interval_s=1)
    with License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-forced") as lease:
        old = lease.session_id
        rt.seat_service.release(_admin(rt, lic), _session_request(old))
        wait_for(lambda: lease.session_id != old and lease.state == LeaseState.ACTIVE, 8, "a new session")


def test_a_lease_lost_to_a_refusal_has_no_time_left(server, make_license, user, other_user, rt):
    """An admin ends the session and someone else takes the seat: LOST while the old token still runs."""
    lic = make_license(seats=1, lease_ttl_s=60, heartbeat_interval_s=30)  # no beat of its own for 25 s or more
    reported = threading.Event()
    with License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-refused",
                 on_lost=lambda lease, error: reported.set()) as lease:
        rt.seat_service.release(_admin(rt, lic), _session_request(lease.session_id))
        with License(lic.key, server=server, token_provider=other_user.provider(), hardware_id="hw-taker"):
            lease.heartbeat_now()  # 410: re-acquire, and the only seat is taken

            assert reported.wait(10), "on_lost was not called"
            assert lease.state == LeaseState.LOST and isinstance(lease.last_error, NoSeatAvailable)
            assert time.time() < lease.valid_until - 30  # the token itself would still run
            assert not lease.valid and lease.seconds_left() == 0


def test_copies_of_a_tool_for_one_user_on_one_machine_share_one_session(server, make_license, user):
    """README "Several copies of a tool": closing one releases the seat of all; the others take one again."""
    lic = make_license(seats=2, lease_ttl_s=60, heartbeat_interval_s=30)
    events = []
    first = License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-copies").acquire()
    with License(lic.key, server=server, token_provider=user.provider(), hardware_id="hw-copies",
                 on_lost=lambda lease, error: events.append("lost"),
                 on_regained=lambda lease: events.append("regained")) as second:
        shared = second.session_id
        assert shared == first.session_id and seats_used(server, lic.key, user.token()) == 1

        assert first.close() is True  # releases the one session, so the second copy's seat too
        assert seats_used(server, lic.key, user.token()) == 0
        second.heartbeat_now()  # (else at its next beat) 410: a seat again at once

        wait_for(lambda: second.reacquisitions == 1, 10, "the second copy's re-acquire")
        assert second.session_id != shared and second.state == LeaseState.ACTIVE
        assert events == [] and seats_used(server, lic.key, user.token()) == 1
    assert seats_used(server, lic.key, user.token()) == 0


def _admin(rt, lic):
    from shared.domain import Principal

    return Principal(uid="admin", role="owner")


def _session_request(session_id):
    """What `POST release {session_id}` asks of the seat service (release takes a session or a queue ticket)."""
    from shared.licensing.requests import ReleaseRequest

    return ReleaseRequest(session_id=session_id)
