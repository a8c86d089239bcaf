"""The Firestore emulator of the local stack: Google's, complete, and never left running.

The store relies on what only Google's emulator (of those installable here) does like
Firestore: transaction isolation, cursors, ranges over document ids. A run served by any
other emulator fails here, by name, rather than passing on weaker semantics.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from google.cloud import firestore

from devstack.firestore_emulator import GOOGLE_EMULATOR, EmulatorMissing, FirestoreEmulator
from devstack.processes import session_members

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def scratch(stack) -> Iterator[firestore.Client]:
    """A client on a project of its own: Google's emulator keeps one database per project."""
    client = firestore.Client(project=f"demo-scratch-{secrets.token_hex(4)}")
    yield client
    client.close()


def test_the_run_is_served_by_googles_emulator(stack):
    facts = stack.firestore_emulator
    assert facts.kind == GOOGLE_EMULATOR, f"this run's Firestore emulator is {facts.describe()}"
    if facts.started_by_stack:
        assert re.fullmatch(r"\d+\.\d+\.\d+", facts.version) and re.fullmatch(r"\d+\.\d+\.\d+", facts.sdk_version)
    # and the server the functions talk to answers as Google's does (plain HTTP/1.1 "Ok")
    assert httpx.get(f"http://{stack.firestore_host}/", timeout=5).text.strip() == "Ok"


def test_concurrent_read_modify_write_transactions_lose_no_update(scratch):
    # given a counter document and two transactions that both read it before either writes
    ref = scratch.collection("counters").document("c")
    ref.set({"a": 0, "b": 0})
    both_read = threading.Barrier(2, timeout=30)

    def bump(field: str) -> int:
        attempts = []

        @firestore.transactional
        def body(transaction):
            current = ref.get(transaction=transaction).to_dict()
            attempts.append(1)
            if len(attempts) == 1:
                both_read.wait()
            transaction.update(ref, {field: current[field] + 1})

        body(scratch.transaction())
        return len(attempts)

    # when both commit
    with ThreadPoolExecutor(2) as pool:
        attempts = list(pool.map(bump, ["a", "b"]))

    # then both counted, and the conflict made at least one run again (how often each
    # retries is the emulator's lock contention, not a guarantee: [1, 2] alone, [3, 4] on
    # a loaded machine)
    assert ref.get().to_dict() == {"a": 1, "b": 1}
    assert max(attempts) >= 2


def test_cursors_and_id_ranges_are_honoured(scratch):
    docs = scratch.collection("things")
    for name in ("d", "b", "e", "a", "c"):
        docs.document(name).set({"kind": "x" if name != "c" else "y"})
    by_id = "__name__"
    after_b = [s.id for s in docs.where(filter=firestore.FieldFilter("kind", "==", "x"))
               .order_by(by_id).start_after({by_id: "b"}).stream()]
    assert after_b == ["d", "e"]
    assert [s.id for s in docs.order_by(by_id).limit(2).stream()] == ["a", "b"]
    assert [s.id for s in scratch.collection_group("things").stream()] == ["a", "b", "c", "d", "e"]


def test_without_googles_emulator_the_stack_refuses_to_start(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EmulatorMissing, match="google-cloud-cli-firestore-emulator"):
        FirestoreEmulator().start()
    checked = subprocess.run([sys.executable, "-m", "devstack.firestore_emulator"], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO / "scripts")}, timeout=60)
    assert checked.returncode == 1 and "There is no fallback emulator" in checked.stderr


# A process that starts the emulator, says where, and sleeps (stopping it on the way out if it can).
_HOLDER = """
import json, sys, time
from devstack.firestore_emulator import FirestoreEmulator
emulator = FirestoreEmulator().start()
print(json.dumps({"session": emulator.process.pid, "host": emulator.host}), flush=True)
try:
    time.sleep(600)
finally:
    emulator.stop()
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_no_emulator_process_outlives_the_process_that_started_it(how):
    # given a process running the emulator: gcloud, a shell script, java
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO / "scripts")})
    try:
        assert holder.stdout is not None
        started = json.loads(holder.stdout.readline())
        tree = session_members(started["session"])
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in tree]
        assert any(b"java" in c and b"cloud-firestore-emulator" in c for c in commands), commands

        # when it is interrupted (Ctrl-C: it stops the emulator), terminated or killed (it cannot)
        holder.send_signal(getattr(signal, how))
        holder.wait(timeout=30)

        # then nothing of the emulator is left, java least of all
        deadline = time.monotonic() + 20
        while session_members(started["session"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not session_members(started["session"]), f"left running after {how}"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://{started['host']}/", timeout=1)
    finally:
        holder.kill()
        holder.wait()
