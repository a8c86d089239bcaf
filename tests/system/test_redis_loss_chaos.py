"""Issue 13 over HTTP: a storm of clients on a small license while Redis is killed and
restarted empty, or the Firestore emulator is frozen; no seat is ever given twice.

The module runs a stack of its own (Redis, Firestore emulator, function server), so that
killing its Redis and freezing its emulator disturbs no other test. Each client keeps a
ledger of when it knew it held a valid lease; the clients' ledgers together must never
count more holders than the license has seats. "Knew" is what makes the check sound on a
shared clock (server and clients read this machine's wall clock): a lease counts from the
moment its grant or extension was *received* (the server made it before then) until the
`expires_at` it was given, or until its holder *sent* release (the server ended it after
then). Counting from the request's send time, or to the release's answer, would count
both sides of every legitimate hand-over (a release and the acquire it lets through are
in flight together) as two holders of one seat.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from devstack.dev_tokens import emulator_id_token
from devstack.firestore_emulator import FirestoreEmulator
from devstack.processes import session_members
from devstack.stack import FunctionServer, LocalStack
from shared.config import Settings
from shared.domain.times import parse_rfc3339
from shared.licensing.provisioning import LicenseSpec
from shared.runtime import Runtime

CLIENTS = 32
SEATS = 5
LEASE_TTL_S = 10
HEARTBEAT_INTERVAL_S = 2
RELEASE_CHANCE = 0.2  # per heartbeat round: holders come and go, so seats change hands often
FIRESTORE_TIMEOUT_S = 2  # the function server's bound on a Firestore call: a frozen emulator is a quick 503


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- the stack ---------------------------------------------------------------------------

@dataclass
class ChaosStack:
    stack: LocalStack
    server: FunctionServer
    rt: Runtime  # this process's clients of the stack: provisioning and the checks
    tenant_id: str
    log_path: Path

    def license(self) -> tuple[str, str]:
        """(license id, key) of a fresh SEATS-seat license."""
        issued = self.rt.provisioning.create_license(
            LicenseSpec(tenant_id=self.tenant_id, max_seats=SEATS, lease_ttl_s=LEASE_TTL_S,
                        heartbeat_interval_s=HEARTBEAT_INTERVAL_S), actor="tests")
        return issued.license.id, issued.license_key

    def sweep(self) -> dict:
        """One run of the sweep, as Cloud Scheduler calls it."""
        answer = httpx.post(f"{self.server.base_url}/sweep", timeout=90,
                            headers={"Authorization": f"Bearer {self.stack.scheduler_token()}"})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def desync(self, license_id: str) -> tuple[set[str], set[str]]:
        """(sessions Firestore calls active, leases Redis counts now) of the license."""
        durable = {s.id for s in self.rt.store.active_sessions(license_id)}
        live = {lease.session_id for lease in self.rt.seats.live_sessions(license_id, now_ms=self.rt.clock.now_ms())}
        return durable, live

    @property
    def emulator(self) -> FirestoreEmulator:
        assert self.stack.firestore_server is not None, "this stack's own emulator"
        return self.stack.firestore_server

    def logged(self, pattern: str) -> list[str]:
        return [line for line in self.log_path.read_text(errors="replace").splitlines() if re.search(pattern, line)]


@pytest.fixture(scope="module")
def chaos(tmp_path_factory) -> Iterator[ChaosStack]:
    # LocalStack.start() adopts a Redis or emulator named in the environment (the session
    # stack's, once a test applied it): unset both, so that these are ours to kill and freeze.
    with pytest.MonkeyPatch.context() as env:
        env.delenv("REDIS_URL", raising=False)
        env.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
        local = LocalStack.start()
    with local:
        log_path = tmp_path_factory.mktemp("logs") / "functions-chaos.log"
        server = local.serve_functions(workers=2, threads=8, log_path=log_path,
                                       extra_env={"FIRESTORE_TIMEOUT_S": str(FIRESTORE_TIMEOUT_S)})
        try:
            rt = Runtime(Settings.from_env(local.env))
            with pytest.MonkeyPatch.context() as env:
                env.setenv("FIRESTORE_EMULATOR_HOST", local.firestore_host)
                rt.firestore  # noqa: B018 - the Firestore client reads the emulator's address once, when built
            tenant_id = f"chaos-{secrets.token_hex(3)}"
            rt.provisioning.create_tenant("Chaos tenant", tenant_id=tenant_id, actor="tests")
            yield ChaosStack(local, server, rt, tenant_id, log_path)
        finally:
            server.stop()


# -- the clients -------------------------------------------------------------------------

class HoldLedger:
    """When one client knew it held a valid lease: [from, until) in ms of the wall clock."""

    def __init__(self) -> None:
        self.intervals: list[list[int]] = []
        self.told_at: list[int] = []  # every grant's or extension's receipt

    def told(self, received_ms: int, expires_ms: int) -> None:
        """A grant or extension until `expires_ms`, received at `received_ms`."""
        self.told_at.append(received_ms)
        if expires_ms <= received_ms:
            return
        if self.intervals and self.intervals[-1][1] > received_ms:
            self.intervals[-1][1] = max(self.intervals[-1][1], expires_ms)
        else:
            self.intervals.append([received_ms, expires_ms])

    def gave_up(self, sent_ms: int) -> None:
        """Release sent at `sent_ms`: the holder stopped relying on its lease then."""
        if self.intervals and self.intervals[-1][1] > sent_ms:
            self.intervals[-1][1] = max(self.intervals[-1][0], sent_ms)


def most_holders(ledgers: dict[str, HoldLedger]) -> tuple[int, int, list[str]]:
    """(the most clients holding at one instant, that instant in ms, who they were)."""
    events = sorted((t, delta, who) for who, ledger in ledgers.items()
                    for start, end in ledger.intervals for t, delta in ((start, 1), (end, -1)))
    # Ends sort before starts at the same ms (-1 < 1): a lease over at t does not overlap one from t.
    holding, most, at = 0, 0, 0
    for t, delta, _who in events:
        holding += delta
        if holding > most:
            most, at = holding, t
    holders = [who for who, ledger in ledgers.items() if any(s <= at < e for s, e in ledger.intervals)]
    return most, at, holders


@dataclass
class Tally:
    """What every client saw, under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter = field(default_factory=Counter)  # "acquire 201" -> n
    rebuilding: int = 0  # 503s that said the seat table was being rebuilt
    odd: list[str] = field(default_factory=list)  # any status but 2xx/4xx/503, or no answer at all
    evicted: list[str] = field(default_factory=list)  # 410 for a lease the client knew valid
    unreleased: list[str] = field(default_factory=list)  # final releases that never got a 200
    answers: list[tuple[str, int, int, int]] = field(default_factory=list)  # (name, status, sent, received)
    handovers: int = 0  # holders asked to release at their next round

    def take_handover(self) -> bool:
        with self.lock:
            if self.handovers <= 0:
                return False
            self.handovers -= 1
            return True

    def answer(self, name: str, answer: httpx.Response, sent_ms: int, received_ms: int) -> None:
        with self.lock:
            self.statuses[f"{name} {answer.status_code}"] += 1
            self.answers.append((name, answer.status_code, sent_ms, received_ms))
            status = answer.status_code
            if status == 503 and '"rebuilding":true' in answer.text.replace(" ", ""):
                self.rebuilding += 1
            if not (200 <= status < 300 or 400 <= status < 500 or status == 503):
                self.odd.append(f"{name} sent at {sent_ms}: {status} {answer.text[:300]}")

    def note(self, kind: list[str], text: str) -> None:
        with self.lock:
            kind.append(text)


class StormClient:
    """One tool on its own machine: acquires, heartbeats with its last lease token,
    sometimes releases; backs off on 409, forgets its session on 410, retries 503s."""

    def __init__(self, n: int, *, base_url: str, project_id: str, license_key: str, tally: Tally,
                 stop: threading.Event, release: threading.Event) -> None:
        self.uid, self.hardware_id = f"storm-{n}-{secrets.token_hex(3)}", f"hw-{n}"
        self.ledger = HoldLedger()
        self.parked = threading.Event()  # stopped, holding what it holds until `release` is set
        self._base_url, self._key, self._tally = base_url, license_key, tally
        self._stop, self._release_all = stop, release
        self._token = emulator_id_token(project_id, self.uid, email=f"{self.uid}@example.com")
        self._rng = random.Random(n)
        self._session: str | None = None
        self._lease_token: str | None = None
        self._expires_ms = 0

    @property
    def session(self) -> str | None:
        return self._session

    def run(self) -> None:
        with httpx.Client(base_url=self._base_url, timeout=30,
                          headers={"Authorization": f"Bearer {self._token}"}) as http:
            while not self._stop.is_set():
                if self._session is None:
                    self._acquire(http)
                elif self._rng.random() < RELEASE_CHANCE or self._tally.take_handover():
                    self._release(http, patience_s=10)
                elif not self._stop.wait(self._rng.uniform(0.5, 1.5)):
                    self._heartbeat(http)
            self.parked.set()
            self._release_all.wait()
            if self._session is not None:
                self._release(http, patience_s=30, final=True)

    def _post(self, http: httpx.Client, name: str, body: dict) -> tuple[httpx.Response | None, int, int]:
        sent = _now_ms()
        try:
            answer = http.post(f"/{name}", json=body)
        except httpx.HTTPError as exc:
            self._tally.note(self._tally.odd, f"{name} sent at {sent}: no answer ({exc!r})")
            return None, sent, _now_ms()
        received = _now_ms()
        self._tally.answer(name, answer, sent, received)
        return answer, sent, received

    def _back_off(self, answer: httpx.Response | None) -> None:
        if answer is not None and answer.status_code == 503:
            pause = float(answer.headers.get("Retry-After", "1"))
        else:
            pause = 0.5
        time.sleep(pause + self._rng.uniform(0, 0.3))

    def _acquire(self, http: httpx.Client) -> None:
        answer, _sent, received = self._post(http, "acquire", {"license_key": self._key,
                                                               "hardware_id": self.hardware_id})
        if answer is not None and answer.status_code in (200, 201):
            body = answer.json()
            self._session, self._lease_token = body["session_id"], body["token"]
            self._expires_ms = parse_rfc3339(body["expires_at"])
            self.ledger.told(received, self._expires_ms)
        elif answer is not None and answer.status_code == 409:
            self._stop.wait(self._rng.uniform(0.2, 0.6))  # full: try again soon, to contend for every seat
        else:
            self._back_off(answer)

    def _heartbeat(self, http: httpx.Client) -> None:
        answer, sent, received = self._post(http, "heartbeat", {"session_id": self._session,
                                                                "lease_token": self._lease_token})
        if answer is not None and answer.status_code == 200:
            body = answer.json()
            self._lease_token, self._expires_ms = body["token"], parse_rfc3339(body["expires_at"])
            self.ledger.told(received, self._expires_ms)
        elif answer is not None and answer.status_code in (404, 410):
            if received < self._expires_ms:
                # The server refused a lease before the expiry it had given: "nobody is evicted".
                self._tally.note(self._tally.evicted, f"{self._session}: heartbeat sent at {sent} answered "
                                 f"{answer.status_code} at {received}, lease valid until {self._expires_ms}: "
                                 f"{answer.text[:200]}")
            self._session = None  # the ledger keeps counting it until its expiry
        else:
            self._back_off(answer)

    def _release(self, http: httpx.Client, *, patience_s: float, final: bool = False) -> None:
        session, self._session = self._session, None
        self.ledger.gave_up(_now_ms())
        deadline = time.monotonic() + patience_s
        while time.monotonic() < deadline:
            answer, _sent, _received = self._post(http, "release", {"session_id": session})
            if answer is not None and answer.status_code < 500:
                if answer.status_code != 200 and final:
                    self._tally.note(self._tally.unreleased, f"{session}: {answer.status_code} {answer.text[:200]}")
                return
            self._back_off(answer)
        if final:
            self._tally.note(self._tally.unreleased, f"{session}: no 200 within {patience_s} s")


@dataclass
class Storm:
    clients: list[StormClient]
    threads: list[threading.Thread]
    tally: Tally
    stop: threading.Event
    release: threading.Event
    started_ms: int = field(default_factory=_now_ms)

    @classmethod
    def start(cls, chaos: ChaosStack, license_key: str) -> Storm:
        tally, stop, release = Tally(), threading.Event(), threading.Event()
        clients = [StormClient(n, base_url=chaos.server.base_url, project_id=chaos.stack.project_id,
                               license_key=license_key, tally=tally, stop=stop, release=release)
                   for n in range(CLIENTS)]
        threads = [threading.Thread(target=c.run, name=f"storm-{c.uid}", daemon=True) for c in clients]
        for thread in threads:
            thread.start()
        return cls(clients, threads, tally, stop, release)

    def hand_over(self, holders: int) -> None:
        """Have that many holders release at their next round (so seats change hands now)."""
        with self.tally.lock:
            self.tally.handovers += holders

    def halt(self) -> set[str]:
        """Stop the storm; returns the sessions the clients hold (and keep until `finish`)."""
        self.stop.set()
        for client in self.clients:
            assert client.parked.wait(60), f"{client.uid} did not stop within 60 s"
        return {c.session for c in self.clients if c.session is not None}

    def finish(self) -> None:
        """Every client releases what it holds, and ends."""
        self.halt()
        self.release.set()
        for thread in self.threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in self.threads), "a client did not end within 60 s"
        assert self.tally.unreleased == [], f"final releases that failed: {self.tally.unreleased[:10]}"

    def most_holders(self) -> tuple[int, int, list[str]]:
        return most_holders({c.uid: c.ledger for c in self.clients})


@pytest.fixture
def start_storm(chaos) -> Iterator[Callable[[str], Storm]]:
    """start_storm(license_key) -> a running Storm; one a failed test left running ends here."""
    started: list[Storm] = []

    def start(license_key: str) -> Storm:
        started.append(Storm.start(chaos, license_key))
        return started[-1]

    yield start
    for storm in started:
        storm.stop.set()
        storm.release.set()
        for thread in storm.threads:
            thread.join(timeout=30)


def _assert_holders_recorded(chaos: ChaosStack, license_id: str, held: set[str]) -> None:
    """Every session a client holds is active in Firestore and live in Redis: nothing lost."""
    durable, live = chaos.desync(license_id)
    assert held <= durable, f"held, but not active in Firestore: {sorted(held - durable)}"
    assert held <= live, f"held, but not live in Redis: {sorted(held - live)}"


def _settle_and_check_desync(chaos: ChaosStack, license_id: str) -> tuple[dict, int]:
    """One sweep: Firestore's active sessions and Redis's live leases must then be the same
    sessions. Leases nobody holds any more (ended in Redis while it lost its outbox, then
    restored from Firestore) lapse within a ttl; a second sweep then closes them, and
    nothing may be left in use. Returns (the first sweep's answer, leases left to lapse)."""
    report = chaos.sweep()
    durable, live = chaos.desync(license_id)
    assert durable == live, (f"after one sweep Firestore has {len(durable)} active, Redis {len(live)} live: "
                             f"only in Firestore {sorted(durable - live)}, only in Redis {sorted(live - durable)}")
    if live:
        lapse_ms = max(lease.expires_ms for lease in chaos.rt.seats.live_sessions(license_id, now_ms=_now_ms()))
        time.sleep(max(0.0, (lapse_ms - _now_ms()) / 1000) + 0.5)
        chaos.sweep()
    assert chaos.desync(license_id) == (set(), set()), "seats still in use after everybody released"
    return report, len(live)


def _assert_the_storm_was_safe(storm: Storm, most: int) -> None:
    tally = storm.tally
    assert tally.odd == [], f"answers other than 2xx/4xx/503 (or none): {tally.odd[:10]}"
    if most > SEATS:
        _most, at, holders = storm.most_holders()
        raise AssertionError(f"{most} clients held a valid lease of a {SEATS}-seat license at {at} "
                             f"(+{(at - storm.started_ms) / 1000:.3f} s): {holders}")
    assert tally.evicted == [], f"holders refused before their lease's expiry: {tally.evicted[:10]}"


def _unavailable(tally: Tally) -> int:
    return sum(n for status, n in tally.statuses.items() if status.endswith(" 503"))


def _signal_session(process, signum: int) -> None:
    """Send `signum` to every process of the emulator's session (gcloud, its shell, java)."""
    for pid in session_members(process.pid):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


# -- the tests ---------------------------------------------------------------------------

def test_redis_killed_and_restarted_empty_mid_storm_gives_no_seat_twice(chaos, start_storm):
    # given a 5-seat license stormed by 32 clients
    license_id, key = chaos.license()
    storm = start_storm(key)
    time.sleep(6)

    # when Redis dies mid-storm and comes back empty on its address 2 s later
    rebuilds_before = len(chaos.logged("rebuilt from Firestore"))
    killed_ms = _now_ms()
    chaos.stack.redis_server.kill()
    time.sleep(2)
    chaos.stack.redis_server.restart()
    restarted_ms = _now_ms()
    time.sleep(8)
    held = storm.halt()

    most, _at, _holders = storm.most_holders()
    tally = storm.tally
    # holders from before the kill whose lease was extended after the restart, without a gap
    kept = sum(1 for c in storm.clients for s, e in c.ledger.intervals
               if s < killed_ms and any(restarted_ms < t < e for t in c.ledger.told_at))
    begun_after = sum(1 for c in storm.clients for s, _e in c.ledger.intervals if s > restarted_ms)
    rebuilds = chaos.logged("rebuilt from Firestore")[rebuilds_before:]
    print(f"\nredis loss: {CLIENTS} clients, {SEATS} seats: most holders at once {most}; "
          f"holders kept through the loss {kept}; holds begun after the restart {begun_after}; "
          f"503s {_unavailable(tally)} ({tally.rebuilding} 'rebuilding'); seat-table rebuilds logged {len(rebuilds)}"
          f"\n  statuses {dict(sorted(tally.statuses.items()))}")
    for line in rebuilds:
        print(f"  {line[:300]}")
    # then nobody was answered with anything but 2xx/4xx/503, at no instant did more
    # clients hold a valid lease than there are seats, nobody lost a valid lease
    _assert_the_storm_was_safe(storm, most)
    assert most == SEATS, "the storm never filled the license: it tested nothing"
    # and every lease a client holds is in Firestore and in Redis
    _assert_holders_recorded(chaos, license_id, held)

    # and once everybody released, one sweep leaves Firestore and Redis agreeing, then 0 in use
    storm.finish()
    report, lapsing = _settle_and_check_desync(chaos, license_id)
    print(f"  first sweep {report}; leases left to lapse {lapsing}")


def test_firestore_frozen_mid_storm_answers_503_and_gives_no_seat_twice(chaos, start_storm):
    # given a 5-seat license stormed by 32 clients
    license_id, key = chaos.license()
    emulator = chaos.emulator.process
    storm = start_storm(key)
    time.sleep(5)

    # when the Firestore emulator freezes for 3 s mid-storm (every process of it stopped)
    frozen_ms = _now_ms()
    _signal_session(emulator, signal.SIGSTOP)
    try:
        storm.hand_over(2)  # releases and the grants they let through: both write to Firestore
        time.sleep(3)
    finally:
        _signal_session(emulator, signal.SIGCONT)
    thawed_ms = _now_ms()
    time.sleep(5)
    held = storm.halt()

    most, _at, _holders = storm.most_holders()
    tally = storm.tally
    extended = sum(1 for name, status, sent, received in tally.answers
                   if name == "heartbeat" and status == 200 and frozen_ms <= sent and received < thawed_ms)
    # Requests that needed Firestore (a grant's record, a release's close) sent while it was frozen
    met_the_freeze = Counter(f"{name} {status}" for name, status, sent, _received in tally.answers
                             if frozen_ms <= sent < thawed_ms and (name == "release" or status in (201, 503)))
    print(f"\nfirestore frozen {(thawed_ms - frozen_ms) / 1000:.1f} s: {CLIENTS} clients, {SEATS} seats: "
          f"most holders at once {most}; heartbeats answered 200 while frozen {extended}; 503s {_unavailable(tally)}; "
          f"Firestore writes asked for while frozen {dict(met_the_freeze)}"
          f"\n  statuses {dict(sorted(tally.statuses.items()))}")
    # then answers were 2xx, 4xx or 503 only, no seat was held twice, nobody lost a lease
    _assert_the_storm_was_safe(storm, most)
    assert most == SEATS, "the storm never filled the license: it tested nothing"
    assert met_the_freeze, "no request needed Firestore while it was frozen: it tested nothing"
    # and every lease a client holds is in Firestore and in Redis: no grant was lost
    _assert_holders_recorded(chaos, license_id, held)

    # and once everybody released, one sweep leaves Firestore and Redis agreeing, then 0 in use
    storm.finish()
    report, lapsing = _settle_and_check_desync(chaos, license_id)
    print(f"  first sweep {report}; leases left to lapse {lapsing}")
