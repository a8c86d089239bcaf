"""scripts/bench-usage: what the usage history costs in Firestore, and how fast a report reads it.

Starts its own stack (Redis, Firestore emulator) and a clock at 00:10 UTC of a day in the
recent past, makes `--licenses` licenses, each with one session holding a seat the whole
day (its Firestore record as the store writes it, and its lease in Redis), and a tenth of
them refused a few times every hour (counted by the seat table, so checkpoints are written
too). Then:
  (1) the real sweep once an hour for `--hours` hours, at HH:03 (the hour before is due):
      the usage step's Firestore operations, counted by wrapping the usage store (writes:
      day documents, the closed cursor, checkpoints, checkpoint deletes, retention; reads:
      the cursor, day documents, checkpoints (read to close an hour, and queried to drop
      them), the sessions read to close an hour, the licenses looked up then, the
      retention query), its wall time and the close step's alone;
  (1') one sweep with no hour due (as the other 59 runs of each hour at a sweep a minute);
  (2) `--report-days` closed days of hourly history for one license (written with the
      history's own functions), and the admin function's report route over them
      (granularity=hour) `--report-calls` times in-process through functions-framework:
      latency p50 / p95 / max.
A sweep that fails is reported (the hours it could not close stay open: the next one
tries them again) and the run goes on; so is the largest commit of day documents the
usage step makes, against the emulator's 4 MiB limit of a request (Firestore's is 10 MiB).
Counts are documents as Firestore bills them: a lookup of a document that does not exist
is a read, a query that returns nothing is one. Times are the emulator's (in memory, on
the same cores), so they say little about Firestore itself; the counts are exact. Ends
with the operations per 1,000 active licenses per month, their cost at list prices, and
a Targets table laid out as scripts/bench's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import sys
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_lib.report import targets_section, verdict

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

REPO = Path(__file__).resolve().parents[2]
WRITES_TARGET = 30  # Firestore writes per active license per day (the issue's)
REPORT_P95_TARGET_MS = 300.0  # a 31-day hourly series, on the emulator
REFUSING_SHARE = 10  # one license in this many is refused every hour
REFUSALS = ("policy", "user_limit", "policy")  # counted per refusing license and hour
RUNS_PER_HOUR = 60  # production: Cloud Scheduler calls the sweep every minute
MONTH_DAYS = 30
COMMIT_LIMIT_BYTES = 4 * 2**20
"""The emulator refuses a gRPC message over 4 MiB (Firestore's API takes up to 10 MiB)."""

# Firestore Standard edition list prices, USD per 100,000 documents, in a multi-region
# location (nam5, eur3): reads 0.06, writes 0.18, deletes 0.02. Source: the pricing page
# https://cloud.google.com/firestore/pricing (its per-location table is drawn by a script, so
# the figures were read from a copy of the page: https://www.twblogs.net/a/5e4f845fbd9eee101e8581aa);
# docs/operations.md uses the same $0.18 per 100k writes. A regional location (e.g.
# us-central1) lists half: 0.03 / 0.09 / 0.01. Taken as assumptions: check before quoting.
PRICE_SOURCE = "https://cloud.google.com/firestore/pricing (multi-region list prices; assumed, check before quoting)"
PRICE_READ, PRICE_WRITE, PRICE_DELETE = 0.06, 0.18, 0.02

WRITES = ("day documents", "cursor", "checkpoints", "retention")
"""Document writes of the usage step (usage_store.py): write_days, set_closed_through,
write_checkpoint, drop_hours. Checkpoint deletes (drop_checkpoint) are apart: billed as deletes."""
SHARED_WRITES = ("cursor", "checkpoints", "checkpoint deletes")
"""Writes made once for every license (not per license)."""
READS = ("cursor", "sessions", "day documents", "checkpoint", "checkpoint drop query", "license checkpoints",
         "licenses", "retention query")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


Tally = tuple[dict[str, int], str, Callable[[tuple, Any], int]]
"""(counts, label, documents of a call from its arguments and result)."""


def _one(args: tuple, result: Any) -> int:
    return 1


def _counted(obj: Any, name: str, seconds: dict[str, float], *tallies: Tally,
             when: Callable[[], bool] = lambda: True) -> None:
    """Wrap `obj.name` so each call adds, for each tally, its documents to counts[label], and
    its seconds to seconds["firestore"] (only while `when()`)."""
    method = getattr(obj, name)

    def wrapper(*args, **kwargs):
        if not when():
            return method(*args, **kwargs)
        started = time.perf_counter()
        try:
            result = method(*args, **kwargs)
        finally:
            seconds["firestore"] += time.perf_counter() - started
        for counts, label, docs in tallies:
            counts[label] += docs(args, result)
        return result

    setattr(obj, name, wrapper)


def _timed(obj: Any, name: str, seconds: dict[str, float], label: str) -> None:
    method = getattr(obj, name)

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            seconds[label] += time.perf_counter() - started

    setattr(obj, name, wrapper)


def _percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value at or above `fraction` of them."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _total(counts: dict[str, int], labels: tuple[str, ...]) -> int:
    return sum(counts.get(label, 0) for label in labels)


def _ops_text(counts: dict[str, int], labels: tuple[str, ...]) -> str:
    return ", ".join(f"{label} {counts.get(label, 0):,}" for label in labels if counts.get(label, 0))


def cost(ops: dict[str, float], prices: dict[str, float]) -> dict[str, float]:
    """USD of these operations (documents) at prices per 100,000."""
    parts = {kind: ops[kind] / 100_000 * prices[kind] for kind in ("writes", "reads", "deletes")}
    return {**{kind: round(value, 4) for kind, value in parts.items()}, "total": round(sum(parts.values()), 4)}


def _size(n: float) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


def _cause(exc: BaseException) -> str:
    """An exception and the deepest of its causes that says something, in a line."""
    text = f"{type(exc).__name__}: {exc}"
    cause: BaseException | None = exc
    deepest = None
    while cause is not None:
        line = (str(cause).splitlines() or [""])[0]
        if cause is not exc and line and not line.startswith("<"):
            deepest = f"{type(cause).__name__}: {line[:200]}"
        cause = cause.__cause__ or cause.__context__
    return text if deepest is None else f"{text} <- {deepest}"


def figures(closed: list[dict[str, Any]], idle: dict[str, Any] | None, *, licenses: int) -> dict[str, Any]:
    """The derived figures of the sweeps that closed their hour: per active license per day,
    shared per day, per 1,000 licenses per month, at one sweep an hour (as measured) and at
    a sweep a minute (59 more runs an hour, each as the measured run with no hour due)."""
    days = sum(hour["hours_closed"] for hour in closed) / 24
    totals: dict[str, dict[str, int]] = {kind: defaultdict(int) for kind in ("writes", "reads", "deletes")}
    for hour in closed:
        for kind in totals:
            for label, n in hour[kind].items():
                totals[kind][label] += n
    writes, reads, deletes = totals["writes"], totals["reads"], totals["deletes"]
    shared = {**{label: writes.get(label, 0) for label in SHARED_WRITES[:2]},
              "checkpoint deletes": deletes.get("checkpoints", 0)}
    per_day = {
        "day_document_writes": writes.get("day documents", 0) / days,
        "shared_writes": sum(shared.values()) / days,
        "writes": _total(writes, WRITES) / days,
        "deletes": deletes.get("checkpoints", 0) / days,
        "reads": _total(reads, READS) / days,
    }
    per_license_day: dict[str, float | None] = {
        "day_document_writes": per_day["day_document_writes"] / licenses,
        "shared_writes": per_day["shared_writes"] / licenses,
        "writes_and_deletes": (per_day["writes"] + per_day["deletes"]) / licenses,
        "reads": per_day["reads"] / licenses,
    }
    own_reads = (reads.get("sessions", 0) + reads.get("day documents", 0) + reads.get("licenses", 0)) / days

    def month(extra_runs: int, idle_writes: int, idle_deletes: int, idle_reads: int) -> dict[str, float]:
        """Documents per 30-day month for 1,000 such licenses: per-license operations times
        1,000, shared ones once (they do not grow with licenses)."""
        def scale(per_license: float, shared_ops: float) -> float:
            return round((per_license * 1000 + shared_ops) * MONTH_DAYS)

        return {
            "writes": scale(per_day["day_document_writes"] / licenses,
                            per_day["writes"] - per_day["day_document_writes"] + extra_runs * idle_writes),
            "reads": scale(own_reads / licenses, per_day["reads"] - own_reads + extra_runs * idle_reads),
            "deletes": scale(0, per_day["deletes"] + extra_runs * idle_deletes),
        }

    months = {"a_sweep_an_hour": month(0, 0, 0, 0)}
    idle_ops = None
    if idle is not None:
        idle_ops = {"writes": _total(idle["writes"], WRITES), "deletes": idle["deletes"].get("checkpoints", 0),
                    "reads": _total(idle["reads"], READS)}
        extra_runs = (RUNS_PER_HOUR - 1) * 24
        per_license_day["writes_and_deletes_a_sweep_a_minute"] = (
            (per_day["writes"] + per_day["deletes"] + extra_runs * (idle_ops["writes"] + idle_ops["deletes"]))
            / licenses)
        per_license_day["reads_a_sweep_a_minute"] = (per_day["reads"] + extra_runs * idle_ops["reads"]) / licenses
        months["a_sweep_a_minute"] = month(extra_runs, idle_ops["writes"], idle_ops["deletes"], idle_ops["reads"])
    return {
        "days": days, "totals": {kind: dict(values) for kind, values in totals.items()}, "shared_writes": shared,
        "per_day": per_day, "per_license_day": per_license_day, "idle_run_ops": idle_ops,
        "month_per_1000_licenses": months,
    }


def targets(derived: dict[str, Any] | None, hours: list[dict[str, Any]], report: dict[str, Any], *,
            licenses: int, prices: dict[str, float]) -> list[list[str]]:
    """Rows of the Targets table."""
    closed = sum(hour["hours_closed"] for hour in hours)
    closed_once = all(hour["hours_closed"] == 1 for hour in hours) and hours[-1]["closed_through"] == hours[-1]["hour"]
    largest = max(hours, key=lambda hour: hour["commit_bytes"])
    docs = largest["commit_docs"]
    rows = [
        ["(1) hours closed, one by each hourly sweep", f"{closed} / {len(hours)}", f"{len(hours)} (each once)",
         verdict(closed_once)],
        ["(1) largest commit of day documents",
         f"{_size(largest['commit_bytes'])} ({docs} docs of {_size(largest['commit_bytes'] / max(docs, 1))})",
         "< 4 MiB (emulator; Firestore: 10 MiB)", verdict(largest["commit_bytes"] < COMMIT_LIMIT_BYTES)],
    ]
    if derived is None:
        return [*rows, ["writes per active license per day", "- (no hour closed)", f"<= {WRITES_TARGET}",
                        verdict(False)], _report_row(report)]
    per = derived["per_license_day"]
    day_docs = derived["totals"]["writes"].get("day documents", 0)
    closed_ok = sum(hour["hours_closed"] for hour in hours if not hour["error"])
    months = derived["month_per_1000_licenses"]
    minute = per.get("writes_and_deletes_a_sweep_a_minute")
    costs = " / ".join(f"${cost(months[cadence], prices)['total']:.2f} ({label})"
                       for cadence, label in (("a_sweep_an_hour", "sweep hourly"), ("a_sweep_a_minute", "a minute"))
                       if cadence in months)
    return [
        *rows,
        ["(1) day-document writes per active license per day",
         f"{per['day_document_writes']:.2f} ({day_docs:,} = {licenses:,} licenses x {closed_ok} h)",
         "24 (one per closed hour)", verdict(day_docs == licenses * closed_ok)],
        ["(1) shared writes per day (cursor, checkpoints, deletes)",
         f"{derived['per_day']['shared_writes']:,.0f} = {per['shared_writes']:.3f} per license", "(reported)", ""],
        ["writes per active license per day", f"{per['writes_and_deletes']:.2f}", f"<= {WRITES_TARGET}",
         verdict(per["writes_and_deletes"] <= WRITES_TARGET)],
        ["writes per active license per day, a sweep a minute",
         "-" if minute is None else f"{minute:.2f} (+{RUNS_PER_HOUR - 1} runs/h as (1'))", f"<= {WRITES_TARGET}",
         verdict(None if minute is None else minute <= WRITES_TARGET)],
        ["reads per active license per day", f"{per['reads']:.2f}" + (
            f" ({per['reads_a_sweep_a_minute']:.2f} a sweep a minute)" if minute is not None else ""),
         "(reported)", ""],
        ["Firestore cost per 1,000 active licenses per month", costs, "(reported; list prices above)", ""],
        _report_row(report),
    ]


def _report_row(report: dict[str, Any]) -> list[str]:
    return [f"report p95, {report['days']}-day hourly series",
            f"{report['p95_ms']:.1f} ms ({report['rows']} rows, {report['calls']} calls)",
            f"<= {REPORT_P95_TARGET_MS:g} ms", verdict(report["p95_ms"] <= REPORT_P95_TARGET_MS)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench-usage", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--licenses", type=_positive_int, default=1000,
                        help="licenses, each active every hour (default 1000)")
    parser.add_argument("--hours", type=_positive_int, default=24, help="hourly sweeps to run (default 24)")
    parser.add_argument("--report-days", type=_positive_int, default=31,
                        help="days of hourly history the report reads (default 31; at most 93)")
    parser.add_argument("--report-calls", type=_positive_int, default=50,
                        help="report calls timed (default 50; one more first, not counted)")
    parser.add_argument("--price-read", type=float, default=PRICE_READ,
                        help=f"USD per 100,000 document reads (default {PRICE_READ}, assumed: see the source printed)")
    parser.add_argument("--price-write", type=float, default=PRICE_WRITE,
                        help=f"USD per 100,000 document writes (default {PRICE_WRITE}, assumed)")
    parser.add_argument("--price-delete", type=float, default=PRICE_DELETE,
                        help=f"USD per 100,000 document deletes (default {PRICE_DELETE}, assumed)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.report_days > 93:
        parser.error("--report-days: a report gives at most 93 days hour by hour")
    prices = {"reads": args.price_read, "writes": args.price_write, "deletes": args.price_delete}

    import functions_framework
    from google.cloud.firestore_v1.types import firestore as firestore_types

    from devstack.dev_tokens import emulator_id_token
    from devstack.stack import LocalStack
    from shared.clock import ManualClock
    from shared.config import Settings
    from shared.domain.leases import RestoreEntry
    from shared.domain.times import DAY_MS, HOUR_MS, ms_to_datetime, rfc3339, utc_day
    from shared.domain.usage import (
    SeatSpan,
    day_doc_id,
    floor_day,
    hour_key,
    hour_start_ms,
    hour_usage,
)
    from shared.licensing.provisioning import LicenseSpec
    from shared.licensing.sweep import Sweeper
    from shared.licensing.usage_history import with_hour
    from shared.runtime import Runtime, install_runtime
    from shared.seats.keys import RECOVERY_EPOCH

    with LocalStack.start() as stack:
        stack.apply_env()
        # 00:10 of a day far enough back that the last sweep (and the report's days before it)
        # are in the past; the usage retention (400 days) keeps them all.
        day = floor_day(int(time.time() * 1000)) - (math.ceil(args.hours / 24) + 2) * DAY_MS
        clock = ManualClock(start_ms=day + 600_000)
        rt = Runtime(Settings.from_env(), clock=clock)
        print(f"scripts/bench-usage --licenses {args.licenses} --hours {args.hours} --report-days "
              f"{args.report_days} --report-calls {args.report_calls}   (nproc {os.cpu_count()})\n"
              f"  redis: {stack.components()['redis']['describe']}\n"
              f"  firestore: {stack.firestore_emulator.describe()}\n"
              f"  clock: from {rfc3339(clock.now_ms())} (manual), history from {utc_day(day)}T00", flush=True)

        # -- setup: licenses, a session each all day (Firestore and Redis), no recovery walk --
        started = time.perf_counter()
        tenant = "usage-bench"
        rt.provisioning.create_tenant("Usage bench", tenant_id=tenant, actor="bench")
        licenses = [rt.provisioning.create_license(LicenseSpec(tenant_id=tenant, max_seats=2), actor="bench").license
                    for _ in range(args.licenses)]
        licenses_s = time.perf_counter() - started
        t0 = time.perf_counter()
        lease_ttl_ms = (args.hours + 3) * HOUR_MS  # outlives every sweep: no lease expires
        sessions = []
        for i, lic in enumerate(licenses):
            acquired = day + (i % 600) * 1000  # granted in the day's first ten minutes
            sessions.append((lic, f"{lic.id}.bench{i:012d}", f"user{i}", acquired))
        db = rt.firestore_client
        for start in range(0, len(sessions), 500):
            batch = db.batch()
            for lic, session_id, uid, acquired in sessions[start : start + 500]:
                # the session document as FirestoreStore.record_grant writes it (its audit event
                # is left out: nothing of the usage history reads events)
                batch.create(db.collection("sessions").document(session_id), {
                    "license_id": lic.id, "tenant_id": lic.tenant_id, "uid": uid, "hardware_id": "hw",
                    "client": {}, "acquired_at": ms_to_datetime(acquired),
                    "lease_expires_at": ms_to_datetime(acquired + lease_ttl_ms), "status": "active", "groups": [],
                    "reserved_for": None, "overage": False, "ci": False,
                })
            batch.commit()
        sessions_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for lic, session_id, uid, acquired in sessions:
            rt.seats.restore(lic.id, [RestoreEntry(session_id, uid, "hw", acquired)], now_ms=clock.now_ms(),
                             ttl_ms=lease_ttl_ms, complete=True)  # trusted: it counts refusals
            rt.seats.index_license(lic.id)
        tables_s = time.perf_counter() - t0
        # no recovery walk: Redis has not lost anything since this process started
        rt.redis.set(RECOVERY_EPOCH, rt.redis.info("server")["run_id"])
        rt.usage.set_closed_through(hour_key(day - HOUR_MS))  # the history starts with the day's first hour
        refusing = licenses[::REFUSING_SHARE]
        print(f"setup: {args.licenses} licenses, {len(sessions)} all-day sessions, {len(refusing)} refused "
              f"{len(REFUSALS)} times an hour, in {time.perf_counter() - started:.1f} s (licenses {licenses_s:.1f} s, "
              f"session documents in batches of 500 {sessions_s:.1f} s, seat tables {tables_s:.1f} s)", flush=True)

        # -- what the usage step does in Firestore, counted by wrapping the stores ------------
        writes: dict[str, int] = defaultdict(int)
        reads: dict[str, int] = defaultdict(int)
        deletes: dict[str, int] = defaultdict(int)
        seconds: dict[str, float] = defaultdict(float)
        closing = [False]  # licenses read while an hour closes are the usage step's
        usage = rt.usage
        closed_through = usage.closed_through  # (the bench's own look, not counted)
        shards = rt.settings.usage_checkpoint_shards

        def checkpoint_documents(args: tuple, result: dict[str, Any]) -> int:
            """The documents of an hour's checkpoint query returned (its licenses' shards, as
            usage_store.py spreads them), or the one read a query that finds none costs."""
            return max(1, len({zlib.crc32(license_id.encode()) % shards for license_id in result}))

        def returned(args: tuple, result: Any) -> int:  # a query: what it returns, at least one read
            return max(1, len(result))

        _counted(usage, "write_days", seconds, (writes, "day documents", lambda args, result: result))
        _counted(usage, "set_closed_through", seconds, (writes, "cursor", _one))
        _counted(usage, "write_checkpoint", seconds, (writes, "checkpoints", lambda args, result: result))
        _counted(usage, "drop_hours", seconds, (writes, "retention", lambda args, result: result))
        # (drop_checkpoint queries the hour's documents, then deletes them: it returns how many)
        _counted(usage, "drop_checkpoint", seconds, (deletes, "checkpoints", lambda args, result: result),
                 (reads, "checkpoint drop query", lambda args, result: max(1, result)))
        _counted(usage, "closed_through", seconds, (reads, "cursor", _one))
        _counted(usage, "days", seconds, (reads, "day documents", lambda args, result: len(args[0])))
        _counted(usage, "checkpoint", seconds, (reads, "checkpoint", checkpoint_documents))
        _counted(usage, "license_checkpoints", seconds, (reads, "license checkpoints", returned))
        _counted(usage, "days_with_hours_before", seconds, (reads, "retention query", returned))
        _counted(rt.store, "sessions_overlapping", seconds, (reads, "sessions", returned))
        _counted(rt.store, "get_license", seconds, (reads, "licenses", _one), when=lambda: closing[0])
        days_counted = usage.days  # the ids come as a generator: made a list first, so they can be counted
        setattr(usage, "days", lambda doc_ids: days_counted(list(doc_ids)))  # noqa: B010
        sizes: dict[str, int] = defaultdict(int)
        api = db._firestore_api  # the GAPIC client every commit goes through (cached by the client)
        commit = api.commit

        def measured_commit(*args, request, **kwargs):
            """Note the size of each commit of day documents, as the client sends it (measured
            apart, and the time taken off the run's). Known before a commit fails."""
            started = time.perf_counter()
            writes_pb = list(request["writes"])
            if writes_pb and "/usage_days/" in writes_pb[0].update.name:
                message = firestore_types.CommitRequest(database=request["database"], writes=writes_pb)
                size = firestore_types.CommitRequest.pb(message).ByteSize()
                if size > sizes["commit_bytes"]:
                    sizes.update(commit_bytes=size, commit_docs=len(writes_pb))
                sizes["doc_bytes"] = max(sizes["doc_bytes"], *(type(w).pb(w).ByteSize() for w in writes_pb))
            seconds["sizing"] += time.perf_counter() - started
            return commit(*args, request=request, **kwargs)

        api.commit = measured_commit
        history = rt.usage_history
        close = history.close_due_hours

        def close_due_hours(*args, **kwargs):
            closing[0] = True
            try:
                return close(*args, **kwargs)
            finally:
                closing[0] = False

        setattr(history, "close_due_hours", close_due_hours)  # noqa: B010
        _timed(history, "close_due_hours", seconds, "close")
        _timed(history, "checkpoint", seconds, "checkpoint")
        _timed(history, "retain", seconds, "retain")
        sweeper = Sweeper(seats=rt.seats, ledger=rt.sweep_ledger, store=rt.store, licenses=rt.licenses,
                          history=history, clock=clock, budget_s=3600)

        def run(label: str) -> dict[str, Any]:
            for counts in (writes, reads, deletes, seconds, sizes):
                counts.clear()
            cursor = closed_through() or ""
            t0 = time.perf_counter()
            error = None
            try:
                hours_closed = sweeper.run().hours_closed
            except Exception as exc:  # a sweep that fails is a finding: the run goes on and says so
                error = _cause(exc)
                hours_closed = -1
            wall = time.perf_counter() - t0 - seconds["sizing"]
            seconds["close"] -= seconds["sizing"]
            through = closed_through() or ""
            if hours_closed < 0:  # the hours it closed before it failed
                hours_closed = (hour_start_ms(through) - hour_start_ms(cursor)) // HOUR_MS if through > cursor else 0
            result = {
                "run": label, "wall_s": round(wall, 3), "close_s": round(seconds["close"], 3),
                "checkpoint_s": round(seconds["checkpoint"], 3), "retain_s": round(seconds["retain"], 3),
                "usage_firestore_s": round(seconds["firestore"], 3), "error": error,
                "hours_closed": hours_closed, "closed_through": through,
                "writes": dict(writes), "reads": dict(reads), "deletes": dict(deletes),
                "doc_bytes": sizes["doc_bytes"], "commit_bytes": sizes["commit_bytes"],
                "commit_docs": sizes["commit_docs"],
            }
            n_writes = _total(writes, WRITES) + deletes.get("checkpoints", 0)
            print(f"{label:<24} sweep {wall:6.2f} s | close {seconds['close']:5.2f} s | usage step in Firestore "
                  f"{seconds['firestore']:5.2f} s | writes {n_writes:,} ({_ops_text(writes, WRITES)}"
                  f"{', checkpoint deletes ' + str(deletes['checkpoints']) if deletes.get('checkpoints') else ''}) | "
                  f"reads {_total(reads, READS):,} ({_ops_text(reads, READS)}) | closed {hours_closed}"
                  + (f" | day documents <= {_size(sizes['doc_bytes'])}, largest commit "
                     f"{_size(sizes['commit_bytes'])}" if sizes["doc_bytes"] else ""), flush=True)
            if error:
                print(f"{'':<24} FAILED: {error}", flush=True)
            return result

        print(f"(1) {args.hours} hourly sweeps, each at HH:03 (the hour before is due); usage step only:", flush=True)
        hours = []
        for h in range(args.hours):
            hour_start = day + h * HOUR_MS
            clock.set_ms(hour_start + 30 * 60_000)
            for lic in refusing:
                for reason in REFUSALS:
                    assert rt.seats.count_denial(lic.id, now_ms=clock.now_ms(), reason=reason), lic.id
            clock.set_ms(hour_start + HOUR_MS + 3 * 60_000)
            hours.append({"hour": hour_key(hour_start), **run(f"(1) hour {hour_key(hour_start)}")})

        end = day + args.hours * HOUR_MS
        idle: dict[str, Any] | None = None
        if (closed_through() or "") == hour_key(end - HOUR_MS):
            clock.set_ms(end + 20 * 60_000)
            for lic in refusing:
                assert rt.seats.count_denial(lic.id, now_ms=clock.now_ms(), reason="policy"), lic.id
            clock.set_ms(end + 30 * 60_000)
            idle = run("(1') no hour due")
            print(f"{'':<24} (as the other {RUNS_PER_HOUR - 1} runs of each hour at a sweep a minute; refusals "
                  "counted since the run before, so a checkpoint: the worst case)", flush=True)
        else:
            print(f"(1') skipped: the hours after {closed_through()} are still open (each sweep tries them again)",
                  flush=True)

        closed = [hour for hour in hours if not hour["error"] and hour["hours_closed"]]
        derived = figures(closed, idle, licenses=args.licenses) if closed else None
        if derived is None:
            print("    no hour closed: no figures per license", flush=True)
        else:
            per = derived["per_license_day"]
            failed = [hour for hour in hours if hour["error"]]
            print(f"    per active license per day ({derived['days'] * 24:g} hours closed by "
                  f"{len(closed)} sweeps{f'; {len(failed)} failed sweeps left out' if failed else ''}): "
                  f"day-document writes {per['day_document_writes']:.2f}, shared writes {per['shared_writes']:.3f} "
                  f"({derived['per_day']['shared_writes']:,.0f} a day: "
                  + ", ".join(f"{k} {v / derived['days']:,.0f}" for k, v in derived["shared_writes"].items())
                  + f"), writes in all {per['writes_and_deletes']:.2f}, reads {per['reads']:.2f}", flush=True)
            idle_ops = derived["idle_run_ops"]
            if idle_ops is not None:
                print(f"    a sweep a minute: + {RUNS_PER_HOUR - 1} x 24 runs a day of "
                      f"{idle_ops['writes'] + idle_ops['deletes']} writes and {idle_ops['reads']} reads: writes "
                      f"{per['writes_and_deletes_a_sweep_a_minute']:.2f}, reads {per['reads_a_sweep_a_minute']:.2f} "
                      "per license and day", flush=True)
            print(f"    prices, USD per 100,000 documents: read {prices['reads']:g}, write {prices['writes']:g}, "
                  f"delete {prices['deletes']:g}: {PRICE_SOURCE}; free tier not deducted", flush=True)
            for cadence, label in (("a_sweep_an_hour", "a sweep an hour (as measured)"),
                                   ("a_sweep_a_minute", "a sweep a minute (production)")):
                if cadence not in derived["month_per_1000_licenses"]:
                    continue
                ops = derived["month_per_1000_licenses"][cadence]
                usd = cost(ops, prices)
                print(f"    per 1,000 active licenses per 30-day month, {label}: {ops['writes']:,.0f} writes "
                      f"(${usd['writes']:.2f}) + {ops['reads']:,.0f} reads (${usd['reads']:.2f}) + "
                      f"{ops['deletes']:,.0f} deletes (${usd['deletes']:.2f}) = ${usd['total']:.2f}", flush=True)

        # -- (2) the report route over `--report-days` closed days of hourly history ------------
        t0 = time.perf_counter()
        lic = rt.provisioning.create_license(LicenseSpec(tenant_id=tenant, max_seats=10), actor="bench").license
        first_day = day - args.report_days * DAY_MS
        docs: dict[str, dict[str, Any]] = {}
        refused = {"denials:no_seat": 2, "denied_callers": 1, "queued": 1, "qwait_30": 1}  # every third hour
        for d in range(args.report_days):
            start = first_day + d * DAY_MS
            # a dozen users on 9-hour sessions starting an hour apart, and a build bot all day
            spans = [SeatSpan(f"{lic.id}.d{d}u{k}", f"user{k}", start + k * HOUR_MS + k * 60_000,
                              start + (k + 9) * HOUR_MS, "released") for k in range(12)]
            spans.append(SeatSpan(f"{lic.id}.d{d}bot", "build-bot", start, start + DAY_MS - 1, "expired"))
            doc: dict[str, Any] | None = None
            for hh in range(24):
                counters = refused if hh % 3 == 0 else {}
                figures_of_hour = hour_usage(spans, counters, start_ms=start + hh * HOUR_MS,
                                             end_ms=start + (hh + 1) * HOUR_MS, max_seats=lic.max_seats)
                doc = with_hour(doc, lic, hour_key(start + hh * HOUR_MS), figures_of_hour)
                docs[day_doc_id(lic.id, utc_day(start))] = doc
        for hh in range(24):  # as the sweep writes them: an hour's entry at a time
            rt.usage.write_days(docs, hour=f"{hour_key(first_day)[:11]}{hh:02d}")
        # the closed cursor is past these days already: the sweeps closed the day after them
        assert (closed_through() or "") >= hour_key(day - HOUR_MS)
        history_s = time.perf_counter() - t0

        install_runtime(rt)
        client = functions_framework.create_app(target="admin", source=str(REPO / "functions" / "admin" / "main.py"),
                                                ).test_client()
        token = emulator_id_token(rt.settings.project_id, "bench-owner", role="owner", email="owner@example.com")
        query = {"granularity": "hour", "from": rfc3339(first_day), "to": rfc3339(day)}
        rows = args.report_days * 24
        for counts in (writes, reads, deletes, seconds):
            counts.clear()
        _counted(rt.usage, "license_days", seconds, (reads, "report day documents", returned))

        server_ms: list[float] = []

        def call() -> tuple[float, int]:
            log_lines = io.StringIO()  # the function's request log line (stdout, as on Cloud Run)
            with contextlib.redirect_stdout(log_lines):
                t0 = time.perf_counter()
                response = client.get(f"/licenses/{lic.id}/report", query_string=query,
                                      headers={"Authorization": f"Bearer {token}"})
                elapsed_ms = (time.perf_counter() - t0) * 1000
            server_ms.extend(json.loads(line)["latency_ms"] for line in log_lines.getvalue().splitlines()
                             if line.startswith("{") and "latency_ms" in line)
            body = response.get_json(silent=True)
            assert response.status_code == 200, (response.status_code, body)
            series = body["series"]
            assert len(series) == rows and all(row["final"] for row in series), len(series)
            return elapsed_ms, len(response.data)

        first_ms, size = call()
        reads.clear()
        server_ms.clear()
        latencies = [call()[0] for _ in range(args.report_calls)]
        report = {"days": args.report_days, "rows": rows, "calls": args.report_calls,
                  "first_call_ms": round(first_ms, 1), "response_bytes": size,
                  "p50_ms": round(_percentile(latencies, 0.50), 1), "p95_ms": round(_percentile(latencies, 0.95), 1),
                  "max_ms": round(max(latencies), 1), "latencies_ms": [round(x, 1) for x in latencies],
                  "server_p50_ms": round(_percentile(server_ms, 0.50), 1) if server_ms else None,
                  "server_p95_ms": round(_percentile(server_ms, 0.95), 1) if server_ms else None,
                  "day_documents_read_per_call": reads["report day documents"] / args.report_calls,
                  "history_written_s": round(history_s, 2)}
        print(f"(2) GET licenses/{{id}}/report?granularity=hour, {args.report_days} days = {rows} rows, "
              f"{args.report_calls} calls (functions-framework test client, in-process): "
              f"p50 {report['p50_ms']:.1f} ms, p95 {report['p95_ms']:.1f} ms, max {report['max_ms']:.1f} ms "
              f"(first call {first_ms:.1f} ms, not counted; the function's own latency_ms p50 / p95: "
              f"{report['server_p50_ms']} / {report['server_p95_ms']} ms); {size / 1024:.0f} KiB each; "
              f"{report['day_documents_read_per_call']:.0f} day documents read per call; history of "
              f"{args.report_days} days written in {history_s:.1f} s", flush=True)

        print("\n".join(targets_section(targets(derived, hours, report, licenses=args.licenses, prices=prices))),
              flush=True)
        if args.json:
            document = {
                "settings": {"licenses": args.licenses, "hours": args.hours, "report_days": args.report_days,
                             "report_calls": args.report_calls, "refusing_licenses": len(refusing),
                             "refusals_per_hour": len(REFUSALS), "day": utc_day(day)},
                "prices_usd_per_100k": {**prices, "source": PRICE_SOURCE},
                "setup_s": {"licenses": round(licenses_s, 2), "sessions": round(sessions_s, 2),
                            "seat_tables": round(tables_s, 2)},
                "hours": hours, "idle_run": idle, **(derived or {}),
                "cost_usd_per_1000_licenses_month": {
                    cadence: cost(ops, prices) for cadence, ops in (derived or {}).get(
                        "month_per_1000_licenses", {}).items()},
                "report": report,
            }
            with open(args.json, "w") as handle:
                json.dump(document, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
