"""Waiting for a seat (issue 14): the SDK in the license's wait queue, the CLI's `--wait`,
seat classes (overage) and the messages people read.

Queues are switched on through the admin API (the vendor's owner token), as an
administrator would; the server's queue itself is read from the seat table (`rt.seats`).
Polls come every second (the shortest interval a policy allows), so a ticket not polled
for three seconds lapses.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
from sdk_probes import wait_for
from sdk_processes import python_child, run_cli

from coditect_license import (
    Forbidden,
    GroupSeatLimit,
    LeaseOptions,
    License,
    NoSeatAvailable,
    TicketGone,
)
from coditect_license.cli import Output, _CliWarnings, _human_error, _printable, main
from coditect_license.errors import from_response
from coditect_license.seat_queue import ordinal

QUEUE = {"queue": {"max_length": 10, "claim_window_s": 10, "poll_interval_s": 1}}


@pytest.fixture
def set_policy(server, id_token):
    """Replace a license's seat policy over the admin API, as its vendor (owner)."""

    def put(license_id: str, policy: dict) -> None:
        answer = httpx.patch(f"{server}/admin/licenses/{license_id}", json={"policy": policy},
                             headers={"Authorization": f"Bearer {id_token('vendor', role='owner')}"}, timeout=30)
        assert answer.status_code == 200, answer.text

    return put


class Recorder(httpx.BaseTransport):
    """The SDK's requests, with the moment each was sent; `delay_poll_s` holds the first
    poll of a ticket back that long (a machine asleep, a network gone for a while)."""

    def __init__(self, delay_poll_s: float = 0.0):
        self._inner = httpx.HTTPTransport()
        self._delay_poll_s = delay_poll_s
        self.sent: list[tuple[float, str, dict]] = []
        self.answers: list[tuple[str, int, dict]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        if self._delay_poll_s and "ticket" in body and request.url.path.endswith("/acquire"):
            time.sleep(self._delay_poll_s)
            self._delay_poll_s = 0.0
        self.sent.append((time.monotonic(), request.url.path.rsplit("/", 1)[-1], body))
        response = self._inner.handle_request(request)
        response.read()
        self.answers.append((request.url.path.rsplit("/", 1)[-1], response.status_code,
                             json.loads(response.content) if response.content else {}))
        return response

    def close(self) -> None:
        self._inner.close()

    def acquires(self) -> list[tuple[float, dict]]:
        return [(at, body) for at, route, body in self.sent if route == "acquire"]


def _holder(lic, server, user) -> License:
    return License(lic.key, server=server, token_provider=user.provider(), hardware_id="holder").acquire()


def _release_when(condition, holder: License, timeout_s: float = 20) -> threading.Thread:
    """A thread that closes `holder` once `condition()` holds (the waiter is in line)."""

    def run() -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not condition():
            time.sleep(0.05)
        holder.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_waiting_client_gets_the_seat_when_the_holder_releases(server, make_license, set_policy, user, other_user,
                                                                  rt):
    lic = make_license(seats=1, lease_ttl_s=60)
    set_policy(lic.license_id, QUEUE)
    holder = _holder(lic, server, other_user)
    places: list[tuple[int, int]] = []
    recorder = Recorder()
    waiter = License(lic.key, server=server, token_provider=user.provider(), hardware_id="waiter",
                     options=LeaseOptions(transport=recorder))
    in_line: list[list[str]] = []

    def queued(position: int, length: int) -> None:
        in_line.append([t.uid for t in rt.seats.queue(lic.license_id)])
        places.append((position, length))

    releaser = _release_when(lambda: places, holder)
    started = time.monotonic()
    with waiter.acquire(wait_s=30, on_queued=queued) as lease:
        waited = time.monotonic() - started
        releaser.join(5)
        assert places == [(1, 1)]  # told once: the place never moved
        assert in_line == [[user.uid]]  # the server had it in line
        assert lease.valid and lease.session_id and lease.seats == {"used": 1, "max": 1}
        assert waited < 10
        assert rt.seats.queue(lic.license_id) == []  # the ticket became the session
        first, *polls = recorder.acquires()
        assert first[1].get("wait") is True and "ticket" not in first[1]
        assert polls and all("ticket" in body for _, body in polls)
        moments = [at for at, _ in recorder.acquires()]
        gaps = [later - earlier for earlier, later in zip(moments, moments[1:], strict=False)]
        assert min(gaps) >= 0.99  # never faster than poll_interval_s
        assert not lease.overage and lease.reserved_for is None
    assert rt.store.get_session(lease.session_id).end_reason == "released"


def test_a_wait_that_runs_out_gives_its_place_up(server, make_license, set_policy, user, other_user, rt):
    lic = make_license(seats=1, lease_ttl_s=60)
    set_policy(lic.license_id, QUEUE)
    holder = _holder(lic, server, other_user)
    recorder = Recorder()
    places: list[tuple[int, int]] = []
    waiter = License(lic.key, server=server, token_provider=user.provider(), hardware_id="waiter",
                     options=LeaseOptions(transport=recorder))
    started = time.monotonic()
    with pytest.raises(NoSeatAvailable) as gave_up:
        waiter.acquire(wait_s=2.5, on_queued=lambda position, length: places.append((position, length)))
    waited = time.monotonic() - started
    error = gave_up.value
    assert 2.5 <= waited < 8 and places == [(1, 1)]
    assert error.waited_s is not None and error.waited_s >= 2.5
    assert (error.queue_position, error.queue_length) == (1, 1)
    assert error.message == "waited 2.5 s in the queue and no seat came free (still 1st of 1); try again later"
    assert waiter.last_error is error and waiter.state.value == "IDLE"
    # the place was given up before the error was raised: the server's queue is empty
    assert rt.seats.queue(lic.license_id) == []
    last_poll = recorder.acquires()[-1][1]
    assert [body for _, route, body in recorder.sent if route == "release"] == [{"ticket": last_poll["ticket"]}]
    assert recorder.answers[-1] == ("release", 200, {"status": "left_queue"})
    # so the seat, when freed, is anyone's at once (no ticket holds it for a client gone)
    holder.close()
    with License(lic.key, server=server, token_provider=user.provider(), hardware_id="newcomer") as newcomer:
        assert newcomer.valid


def test_a_lapsed_ticket_is_queued_again(server, make_license, set_policy, user, other_user, rt):
    lic = make_license(seats=1, lease_ttl_s=60)
    set_policy(lic.license_id, QUEUE)
    holder = _holder(lic, server, other_user)
    # the first poll comes 4.5 s after the last answer: the ticket (kept 3 s unpolled) has lapsed
    recorder = Recorder(delay_poll_s=3.5)
    places: list[tuple[int, int]] = []
    waiter = License(lic.key, server=server, token_provider=user.provider(), hardware_id="waiter",
                     options=LeaseOptions(transport=recorder))
    releaser = _release_when(lambda: len(places) >= 2, holder)
    with waiter.acquire(wait_s=30, on_queued=lambda position, length: places.append((position, length))) as lease:
        releaser.join(5)
        assert lease.valid
    gone = [body for route, status, body in recorder.answers if route == "acquire" and status == 410]
    assert gone and gone[0]["error"]["code"] == TicketGone.code
    tickets = [body["ticket"] for route, status, body in recorder.answers if route == "acquire" and status == 202]
    assert len(set(tickets)) == 2  # a new place, taken at once
    assert places == [(1, 1), (1, 1)]  # told again: the place is a new one
    assert rt.seats.queue(lic.license_id) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_process_stopped_while_waiting_gives_its_place_up(signum, server, make_license, set_policy, user,
                                                           other_user, rt):
    lic = make_license(seats=1, lease_ttl_s=60)
    # polled every 10 s: left alone, the place would last 30 s, far longer than this test looks
    set_policy(lic.license_id, {"queue": {"poll_interval_s": 10, "claim_window_s": 30}})
    holder = _holder(lic, server, other_user)
    child = python_child(textwrap.dedent(f"""
        import sys
        from coditect_license import License
        lease = License({lic.key!r}, server={server!r}, token_provider={user.token()!r}, hardware_id="child")
        try:
            lease.acquire(wait_s=120, on_queued=lambda position, length: print("queued", position, flush=True))
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(130)
    """))
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "queued 1\n"
        assert [t.uid for t in rt.seats.queue(lic.license_id)] == [user.uid]
        child.send_signal(signum)
        code = child.wait(20)
        rest = child.stdout.read()
    finally:
        if child.poll() is None:
            child.kill()
        holder.close()
    if signum == signal.SIGTERM:
        assert code == -signal.SIGTERM  # the SDK gave the place up, then died of the signal as the default would
    else:
        assert code == 130 and rest == "interrupted\n"  # KeyboardInterrupt reaches the tool, the place given up
    assert rt.seats.queue(lic.license_id) == []


def test_closing_a_waiting_lease_ends_the_wait(server, make_license, set_policy, user, other_user, rt):
    lic = make_license(seats=1, lease_ttl_s=60)
    set_policy(lic.license_id, {"queue": {"poll_interval_s": 10, "claim_window_s": 30}})
    waiter = License(lic.key, server=server, token_provider=user.provider(), hardware_id="waiter")
    places: list[tuple[int, int]] = []
    outcome: list[BaseException] = []

    def wait() -> None:
        try:
            waiter.acquire(wait_s=60, on_queued=lambda position, length: places.append((position, length)))
        except BaseException as exc:
            outcome.append(exc)

    with _holder(lic, server, other_user):
        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        wait_for(lambda: places, 10, "a place in the queue")
        started = time.monotonic()
        assert waiter.close() is True  # from another thread, mid-wait
        thread.join(5)
        assert time.monotonic() - started < 3  # at once, not at the next poll
        assert rt.seats.queue(lic.license_id) == []
    assert len(outcome) == 1 and isinstance(outcome[0], NoSeatAvailable)
    assert "the lease was closed" in outcome[0].message
    assert waiter.state.value == "CLOSED" and waiter.session_id is None


def test_without_a_queue_wait_looks_again_and_says_how_long_it_waited(server, make_license, user, other_user):
    lic = make_license(seats=1, lease_ttl_s=60)
    holder = _holder(lic, server, other_user)
    places: list[tuple[int, int]] = []
    try:
        with pytest.raises(NoSeatAvailable) as gave_up:
            License(lic.key, server=server, token_provider=user.provider(), hardware_id="waiter").acquire(
                wait_s=1.5, on_queued=lambda position, length: places.append((position, length)))
    finally:
        holder.close()
    error = gave_up.value
    assert places == [] and error.queue_position is None and error.waited_s >= 1.5
    assert error.message == ("waited 1.5 s and no seat came free: the license's only seat is in use; "
                             "try again later")
    assert error.seats_max == 1 and error.retry_after


def test_an_overdraft_seat_is_marked_overage(server, make_license, set_policy, user, other_user):
    lic = make_license(seats=1, lease_ttl_s=60, heartbeat_interval_s=1)
    set_policy(lic.license_id, {"overdraft_seats": 1})
    with License(lic.key, server=server, token_provider=other_user.provider(), hardware_id="first") as first:
        with License(lic.key, server=server, token_provider=user.provider(), hardware_id="second") as second:
            assert not first.overage and not first.claims.overage
            assert second.overage and second.claims.overage  # the answer and the signed token agree
            assert second.seats == {"used": 2, "max": 1}
            beats = second.heartbeats
            wait_for(lambda: second.heartbeats > beats, 5, "a heartbeat")
            assert second.overage  # still, from the heartbeat's answer
            with pytest.raises(NoSeatAvailable) as full:  # and no further: the overdraft is one seat
                License(lic.key, server=server, token_provider=user.provider(), hardware_id="third").acquire()
            assert full.value.details["seats"]["overdraft"] == 1


def test_policy_refusals_are_typed(server, make_license, set_policy, user, other_user):
    lic = make_license(seats=3, lease_ttl_s=60)
    set_policy(lic.license_id, {
        "groups": [{"name": "eng", "uids": [user.uid, other_user.uid]}],
        "max": [{"group": "eng", "seats": 1}],
        "exclude": {"hardware": ["stolen-laptop"]},
    })
    with License(lic.key, server=server, token_provider=other_user.provider(), hardware_id="a"):
        with pytest.raises(GroupSeatLimit) as group_full:
            License(lic.key, server=server, token_provider=user.provider(), hardware_id="b").acquire()
    assert isinstance(group_full.value, NoSeatAvailable) and group_full.value.group == "eng"
    assert (group_full.value.seats_used, group_full.value.seats_max) == (1, 1)
    with pytest.raises(Forbidden) as excluded:
        License(lic.key, server=server, token_provider=user.provider(), hardware_id="stolen-laptop").acquire()
    assert excluded.value.rule == "excluded"


# -- the CLI ----------------------------------------------------------------------------
@pytest.fixture
def cli_env(server, user):
    return {"CODITECT_LICENSE_SERVER": server, "CODITECT_ID_TOKEN": user.token()}


def test_cli_wait_shows_the_place_in_line_and_gets_the_seat(cli_env, server, make_license, set_policy, other_user, rt):
    lic = make_license(seats=1, lease_ttl_s=60)
    set_policy(lic.license_id, QUEUE)
    holder = _holder(lic, server, other_user)
    script = Path(sys.executable).parent / "coditect-license"
    waiting = subprocess.Popen([str(script), "acquire", "--wait", "1m", "--key", lic.key],
                               env={**os.environ, **cli_env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    errors: list[str] = []

    def read_errors() -> None:
        assert waiting.stderr is not None
        for line in waiting.stderr:
            errors.append(line)

    reader = threading.Thread(target=read_errors, daemon=True)
    try:
        reader.start()
        wait_for(lambda: any("waiting in the queue" in line for line in errors), 20, "the place in line")
        holder.close()
        waiting.wait(timeout=30)
        assert waiting.stdout is not None
        out = waiting.stdout.read()
        reader.join(5)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 0, errors
    assert "waiting in the queue: 1st of 1\n" in errors
    assert any(line.startswith("got a seat after ") and line.endswith(" in the queue\n") for line in errors)
    assert "seat acquired (1/1 in use)" in out
    assert rt.seats.queue(lic.license_id) == []
    assert run_cli("release", "--key", lic.key, env=cli_env).returncode == 0


def test_cli_wait_that_runs_out_says_so_in_the_users_unit(cli_env, server, make_license, set_policy, other_user, rt):
    queued = make_license(seats=1, lease_ttl_s=60)
    set_policy(queued.license_id, QUEUE)
    plain = make_license(seats=1, lease_ttl_s=60)
    with _holder(queued, server, other_user), _holder(plain, server, other_user):
        in_line = run_cli("acquire", "--key", queued.key, "--wait", "2s", env=cli_env)
        no_queue = run_cli("acquire", "--key", plain.key, "--wait", "1", "--json", env=cli_env)
    assert in_line.returncode == 10
    assert "waiting in the queue: 1st of 1" in in_line.stderr
    assert ("coditect-license: waited 2s in the queue and no seat came free (still 1st of 1); try again later "
            "[NO_SEAT_AVAILABLE]") in in_line.stderr
    assert rt.seats.queue(queued.license_id) == []
    assert no_queue.returncode == 10
    assert ("waited 1s and no seat came free: the license's only seat is in use; try again later"
            in no_queue.stderr)
    error = json.loads(no_queue.stdout)["error"]
    assert error["waited_s"] >= 1 and error["seats"] == {"used": 1, "max": 1}
    assert run_cli("acquire", "--key", plain.key, "--wait", "soon", env=cli_env).returncode == 2


def test_messages_for_people(capsys):
    # one seat: singular; no status code, no promise of when a lease ends; the vendor's support line
    full = from_response(409, {"error": {"code": "NO_SEAT_AVAILABLE",
                                         "message": "the license's only seat is in use; try again later",
                                         "seats": {"used": 1, "max": 1},
                                         "support": "Acme IT, +1 555 0100\x1b[2J"}}, 30.0)
    assert _human_error(full) == "the license's only seat is in use; try again later"
    Output(False).error(full.code, _human_error(full), 10, support_line=_printable(full.support))
    err = capsys.readouterr().err.splitlines()
    assert err == ["coditect-license: the license's only seat is in use; try again later [NO_SEAT_AVAILABLE]",
                   "support: Acme IT, +1 555 0100 [2J"]
    # a message-less refusal is built with real plurals
    bare = from_response(409, {"error": {"code": "NO_SEAT_AVAILABLE", "seats": {"used": 1, "max": 1}}}, None)
    assert _human_error(bare) == "the license's only seat is in use; try again later"
    many = from_response(409, {"error": {"code": "NO_SEAT_AVAILABLE", "seats": {"used": 3, "max": 3}}}, None)
    assert _human_error(many) == "all 3 seats of this license are in use; try again later"
    one_session = from_response(409, {"error": {"code": "USER_SESSION_LIMIT", "message": "x",
                                                "sessions": {"used": 1, "max": 1}}}, None)
    assert _human_error(one_session).startswith("you already hold 1 session of this license")
    forbidden = from_response(403, {"error": {"code": "FORBIDDEN", "message": "m", "rule": "not_included"}}, None)
    assert isinstance(forbidden, Forbidden) and forbidden.rule == "not_included"
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]


def test_a_refusal_with_a_support_line_shows_it_on_its_own_line(capsys):
    """A vendor's server may add `support` to a refusal (this stack does not): a stand-in answers."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Refusing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.dumps({"error": {"code": "FORBIDDEN", "rule": "excluded", "support": "help@acme.example",
                                         "message": "the license's administrator has excluded this user or machine"}})
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args) -> None:
            pass

    stand_in = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=stand_in.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{stand_in.server_address[1]}"
        assert main(["acquire", "--server", url, "--key", "K", "--token", "t", "--wait", "5s"]) == 6
        human = capsys.readouterr()
        assert main(["acquire", "--server", url, "--key", "K", "--token", "t", "--json"]) == 6
        machine = capsys.readouterr()
    finally:
        stand_in.shutdown()
        sdk_log = logging.getLogger("coditect_license")
        for handler in [h for h in sdk_log.handlers if isinstance(h, _CliWarnings)]:
            sdk_log.removeHandler(handler)  # main() added it, writing to this test's captured stderr
    assert human.err.splitlines()[-2:] == [
        "coditect-license: the license's administrator has excluded this user or machine [FORBIDDEN]",
        "support: help@acme.example"]
    error = json.loads(machine.out)["error"]
    assert (error["rule"], error["support"], error["exit_code"]) == ("excluded", "help@acme.example", 6)
