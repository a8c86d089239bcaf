"""scripts/bench, scripts/bench-sweep, scripts/bench-loss, scripts/bench-usage and
scripts/bench-outbox end to end, with tiny durations and sizes.

They are run as a developer runs them, each on a stack of its own: scripts/bench
against a ./scripts/dev started here (found through DEV_STATE_DIR, as the bench finds
any dev stack), the others on the stacks they start themselves. None touches the session's stack nor the developer's
.dev/. A run this short measures nothing, so the timing verdicts are not checked; that
each tool completes, prints every section and its Targets table, and that the figures
which must be exact are, is — so a changed seat script, key or endpoint cannot silently
break the benchmark again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.processes import free_port

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

# Seconds, not minutes: every phase of scripts/bench runs about a second.
TINY_BENCH = ["--users", "4", "--licenses", "2", "--duration", "1", "--think", "0.05", "0.1", "--ramp", "0.5",
              "--connections", "2", "--sat-duration", "1", "--heartbeat-sessions", "10", "--warmup", "0.5",
              "--redis-calls", "50"]
TINY_SWEEP = ["--licenses", "5", "--leases", "50"]
TINY_LOSS = ["--sessions", "20", "--all-sessions", "30", "--licenses", "3", "--acquires", "40"]
TINY_USAGE = ["--licenses", "3", "--hours", "3", "--report-days", "2", "--report-calls", "3"]
TARGET_HEADERS = ["figure", "measured", "target", "verdict"]


def _own_backends_env(**extra: str) -> dict[str, str]:
    """This environment without the session stack's backends, so the tool starts its own."""
    backends = ("REDIS_URL", "FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "NOTIFY_TOPIC", "DEV_STATE_DIR")
    env = {k: v for k, v in os.environ.items() if k not in backends}
    return {**env, **extra}


def _targets(stdout: str) -> dict[str, list[str]]:
    """The closing Targets table: figure -> [measured, target, verdict]; its header checked."""
    lines = stdout.splitlines()
    assert "Targets" in lines, stdout
    header, rule, *rows = lines[lines.index("Targets") + 1:]
    assert re.split(r"\s{2,}", header.strip()) == TARGET_HEADERS, header
    assert set(rule.strip()) <= {"-", " "}, rule
    table = {}
    for row in rows:
        if not row.startswith("    ") or not row.strip():
            break  # anything after the table (e.g. "JSON written to ...")
        figure, *rest = re.split(r"\s{2,}", row.strip())
        table[figure] = rest
    return table


def _run(tool: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    done = subprocess.run([str(REPO / "scripts" / tool), *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, f"{tool} exited {done.returncode}:\n{done.stdout}\n{done.stderr[-3000:]}"
    print(f"{tool} took {time.monotonic() - started:.1f} s")
    return done


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory) -> Iterator[Path]:
    """./scripts/dev with its own backends and state folder; yields that folder (DEV_STATE_DIR)."""
    state = tmp_path_factory.mktemp("bench-dev")
    env = _own_backends_env(DEV_STATE_DIR=str(state), PORT=str(free_port()), WORKERS="2",
                            SWEEP_INTERVAL_S="3600")  # no timed sweep during the run
    with open(state / "dev.out", "wb") as out:
        dev = subprocess.Popen([str(REPO / "scripts" / "dev")], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not (state / "stack.json").exists():
            assert dev.poll() is None and time.monotonic() < deadline, (state / "dev.out").read_text()
            time.sleep(0.2)
        yield state
    finally:
        dev.send_signal(signal.SIGTERM)
        try:
            dev.wait(timeout=30)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait()


def test_bench_measures_a_dev_stack_and_prints_its_targets(dev_stack, tmp_path):
    report = tmp_path / "bench.json"
    done = _run("bench", *TINY_BENCH, "--json", str(report), env=_own_backends_env(DEV_STATE_DIR=str(dev_stack)))
    facts = json.loads((dev_stack / "stack.json").read_text())
    out = done.stdout

    assert out.startswith("scripts/bench: license server, running local stack"), out
    assert f"server  : {facts['base_url']} (stack pid {facts['pid']})" in out
    for section in ("(a) Reference profile: 4 users", "(b) Saturation: closed loop, 2 connections",
                    "(d) Redis, acquire_seat script, one call at a time, 50 calls x 3 rounds",
                    "(e) KMS AsymmetricSign calls", "(f) Peak RSS of the stack"):
        assert section in out, section
    targets = _targets(out)
    assert list(targets) == [
        "reference p99 acquire", "reference p99 heartbeat", "reference p99 release", "reference p99 validate",
        "reference unexpected errors", "heartbeat saturation / bare function", "acquire saturation / bare function",
        "acquire saturation, every seat policy on / none",
        "SeatTable.acquire / bare EVALSHA", "KMS calls per 1000 acquires+heartbeats (steady)",
        "KMS calls in warm-up", "peak RSS of the stack",
    ]
    # Exact, however short the run: every request answered as the API says, and both
    # Redis loops granted every call (a refusal stops the bench before the table).
    assert targets["reference unexpected errors"] == ["0", "0", "PASS"]
    assert re.fullmatch(r"[\d,]+ / [\d,]+ = [\d.]+ %", targets["SeatTable.acquire / bare EVALSHA"][0])
    assert re.fullmatch(r"[\d,]+ / [\d,]+ = [\d.]+ %", targets["acquire saturation, every seat policy on / none"][0])

    document = json.loads(report.read_text())
    redis_loops = document["redis_evalsha"]
    assert redis_loops["calls_per_round"] == 50
    assert min(redis_loops["bare_rounds_per_s"] + redis_loops["lib_rounds_per_s"]) > 0
    for phase in ("sat acquire", "sat acquire (policies)", "sat heartbeat", "sat release", "sat validate",
                  "sat health"):
        ops = document["phases"][phase]["ops"]
        assert sum(stats["ok"] for stats in ops.values()) > 0, phase
        assert sum(stats["unexpected_error_count"] for stats in ops.values()) == 0, (phase, ops)


def test_bench_sweep_runs_on_its_own_stack_and_prints_its_targets(tmp_path):
    report = tmp_path / "sweep.json"
    done = _run("bench-sweep", *TINY_SWEEP, "--json", str(report), env=_own_backends_env())
    out = done.stdout

    for phase in ("(0) Redis side alone, 50 expirations", "(1) 50 expired leases",
                  "(2) 50 live leases, nothing to do", "(2') the same again"):
        assert phase in out, phase
    targets = _targets(out)
    assert list(targets) == [
        "(0) Redis side alone, 50 expirations", "(1) leases expired by the full sweep",
        "(1) Redis side inside the full sweep", "(2) live leases, nothing to do: Firestore reads / writes",
        "(2') live leases, nothing to do: Firestore reads / writes",
    ]
    # Exact, however small the run: every lease expires once, and a sweep with nothing to
    # do costs Firestore nothing after that history.
    assert targets["(1) leases expired by the full sweep"] == ["50", "50 (all)", "PASS"]
    assert targets["(2) live leases, nothing to do: Firestore reads / writes"][::2] == ["1 / 0", "PASS"]
    assert targets["(2') live leases, nothing to do: Firestore reads / writes"][::2] == ["1 / 0", "PASS"]
    assert [phase["phase"] for phase in json.loads(report.read_text())][0] == "(0) Redis side alone"


def test_bench_loss_runs_on_its_own_stack_and_prints_its_figures(tmp_path):
    report = tmp_path / "loss.json"
    done = _run("bench-loss", *TINY_LOSS, "--json", str(report), env=_own_backends_env())
    out = done.stdout

    for phase in ("(1) flush, then an acquire on a license of 20 live sessions: refused 409",
                  "(2) flush, then one sweep over 3 licenses of 30 live sessions",
                  "(3) SeatTable.acquire on a plain Redis 7", "wait_replicas 0 (no WAIT)", "wait_replicas 1 (WAIT 1 "):
        assert phase in out, phase
    figures = out.splitlines()[out.splitlines().index("Figures"):]
    for figure in ("(1) rebuild of one license, 20 live sessions", "(2) recovery sweep, 3 licenses, 30 live sessions",
                   "(3) acquire p50 / p99, no WAIT", "(3) acquire p50 / p99, WAIT for 1 replica"):
        assert any(line.strip().startswith(figure) for line in figures), figure
    # Exact, however small the run: every session comes back, by one rebuild per license
    # that writes nothing, and every acquire of both modes is answered (a refusal after
    # WAIT's timeout is counted, not measured: on shared cores it may happen).
    one, every, wait = json.loads(report.read_text())
    assert one["restored"] == 20 and one["firestore_docs"] == 20
    assert (every["restored"], every["rebuilt"], every["firestore_writes"]) == (30, 3, 0)
    for mode in ("wait_replicas_0", "wait_replicas_1"):
        assert wait[mode]["granted"] + wait[mode]["refused"] == 40, wait[mode]


def test_bench_usage_runs_on_its_own_stack_and_prints_its_targets(tmp_path):
    report = tmp_path / "usage.json"
    done = _run("bench-usage", *TINY_USAGE, "--json", str(report), env=_own_backends_env())
    out = done.stdout

    for phase in ("setup: 3 licenses, 3 all-day sessions, 1 refused 3 times an hour",
                  "(1) 3 hourly sweeps, each at HH:03", "(1') no hour due",
                  "per 1,000 active licenses per 30-day month, a sweep an hour (as measured)",
                  "per 1,000 active licenses per 30-day month, a sweep a minute (production)",
                  "(2) GET licenses/{id}/report?granularity=hour, 2 days = 48 rows, 3 calls"):
        assert phase in out, phase
    assert len(re.findall(r"^\(1\) hour \d{4}-\d\d-\d\dT\d\d ", out, re.MULTILINE)) == 3, out
    targets = _targets(out)
    assert list(targets) == [
        "(1) hours closed, one by each hourly sweep", "(1) largest commit of day documents",
        "(1) day-document writes per active license per day",
        "(1) shared writes per day (cursor, checkpoints, deletes)", "writes per active license per day",
        "writes per active license per day, a sweep a minute", "reads per active license per day",
        "Firestore cost per 1,000 active licenses per month", "report p95, 2-day hourly series",
    ]
    # Exact, however small the run: each sweep closes its hour once, and writes one day
    # document per active license, the cursor, one checkpoint (one license in ten was
    # refused) and its delete; every report call answers every hour of the days asked for.
    assert targets["(1) hours closed, one by each hourly sweep"] == ["3 / 3", "3 (each once)", "PASS"]
    assert targets["(1) largest commit of day documents"][-1] == "PASS"
    assert targets["(1) day-document writes per active license per day"] == [
        "24.00 (9 = 3 licenses x 3 h)", "24 (one per closed hour)", "PASS"]
    assert targets["(1) shared writes per day (cursor, checkpoints, deletes)"][0] == "72 = 24.000 per license"
    assert re.fullmatch(r"[\d.]+ ms \(48 rows, 3 calls\)", targets["report p95, 2-day hourly series"][0])

    document = json.loads(report.read_text())
    hours = document["hours"]
    assert [(hour["hours_closed"], hour["error"]) for hour in hours] == [(1, None)] * 3
    assert [hour["closed_through"] for hour in hours] == [hour["hour"] for hour in hours]
    for hour in hours:
        assert hour["writes"] == {"day documents": 3, "cursor": 1, "checkpoints": 1}, hour
        assert hour["deletes"] == {"checkpoints": 1}, hour
        assert hour["reads"]["day documents"] == 3 and hour["reads"]["sessions"] == 3, hour
    idle = document["idle_run"]
    assert idle["hours_closed"] == 0 and idle["writes"] == {"checkpoints": 1} and not idle["deletes"], idle
    assert document["per_license_day"]["day_document_writes"] == 24
    assert (document["report"]["rows"], document["report"]["calls"]) == (48, 3)
    assert len(document["report"]["latencies_ms"]) == 3


def test_bench_outbox_runs_on_its_own_stack_and_prints_its_targets():
    done = _run("bench-outbox", "--events", "30", env=_own_backends_env())
    targets = _targets(done.stdout)
    assert targets["(1) events published"] == ["30", "30 (all)", "PASS"]
    assert targets["(1) Firestore writes per event published"][::2] == ["1.00", "PASS"]
    assert targets["(2) a second run publishes nothing"] == ["0 / 0", "0 / 0", "PASS"]
