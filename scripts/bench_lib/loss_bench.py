"""scripts/bench-loss: what a Redis loss costs to recover from, and what WAIT costs a grant.

Starts its own stack (Redis as Memorystore runs it, Google's Firestore emulator) and,
for (3), a plain Redis 7 primary with one replica. Live sessions are real grants
(SeatService.acquire_seat: a Redis grant, then its Firestore record), each license in a
Firestore project of its own phase. Then:
  (1) one license of --sessions live sessions, Redis flushed: the next acquire rebuilds
      its seat table inline (Firestore read + restore_seats) and is refused (every seat
      is a restored holder's); the acquire's time and the rebuild's own;
  (2) --all-sessions live sessions over --licenses licenses, Redis flushed: one sweep's
      recovery walk rebuilds them all; its time and its Firestore reads;
  (3) SeatTable.acquire on the primary, one call at a time, with wait_replicas 0 and 1
      (Redis WAIT for the replica's acknowledgement), p50/p99 of --acquires each.
The clock stands still (a ManualClock), so no lease expires and no sweep step other than
recovery has work. Firestore time is the in-memory emulator's on this machine's cores,
so it says little about Firestore itself; Redis (3) is on loopback, with no network.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import secrets
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from bench_lib.report import text_table

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

SEED_THREADS = 8  # grants in flight while seeding (Firestore commits dominate)
FIGURE_HEADERS = ["figure", "measured", "detail"]
REBUILD_READS = ("held_seats", "active_sessions")  # a license's rebuild reads these, nothing else
STORE_READS = (*REBUILD_READS, "active_sessions_page", "get_license", "sessions")


class CallMeter:
    """Counts the calls of chosen methods of an adapter, their seconds and the records they return."""

    def __init__(self, adapter: Any, names: tuple[str, ...]):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.records: dict[str, int] = defaultdict(int)
        for name in names:
            setattr(adapter, name, self._metered(name, getattr(adapter, name)))

    def _metered(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def metered(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = method(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1
            if isinstance(result, list | dict):
                self.records[name] += len(result)
            elif result is not None:
                self.records[name] += 1
            return result

        return metered

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()
        self.records.clear()


class RebuildLog(logging.Handler):
    """Keeps the rebuilder's "rebuilt from Firestore" lines (one per license) instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def percentile(values: list[float], q: float) -> float:
    """Nearest rank, as scripts/bench reports its percentiles."""
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"  # None: every call of that mode was refused


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def seed_sessions(rt: Any, keys: list[str], per_license: int) -> None:
    """`per_license` live sessions on each license key: real grants by distinct users."""
    from shared.domain import Principal
    from shared.licensing.requests import AcquireRequest

    rt.signer.prepare(rt.clock.now_ms() // 1000)  # the delegate's one KMS call, before the threads

    def grant(job: tuple[int, str]) -> None:
        n, key = job
        reply = rt.seat_service.acquire_seat(Principal(f"u{n}"), AcquireRequest(license_key=key, hardware_id="hw"))
        if not reply.created:
            raise RuntimeError(f"seeding: grant {n} was not a new session: {reply.body}")

    jobs = [(i * per_license + n, key) for i, key in enumerate(keys) for n in range(per_license)]
    with ThreadPoolExecutor(SEED_THREADS) as pool:
        list(pool.map(grant, jobs))


def one_license(settings: Any, clock: Any, sessions: int, rebuilds: RebuildLog) -> dict[str, Any]:
    """(1): the inline rebuild of one license after a flush."""
    from shared.domain import Principal
    from shared.errors import NoSeatAvailable
    from shared.licensing.provisioning import LicenseSpec
    from shared.licensing.requests import AcquireRequest
    from shared.runtime import Runtime

    rt = Runtime(replace(settings, project_id=f"demo-loss-one-{secrets.token_hex(4)}"), clock=clock)
    rt.provisioning.create_tenant("Loss bench", tenant_id="loss-bench", actor="bench")
    issued = rt.provisioning.create_license(LicenseSpec(tenant_id="loss-bench", max_seats=sessions,
                                                        lease_ttl_s=3600), actor="bench")
    lic_id, key = issued.license.id, issued.license_key
    started = time.perf_counter()
    seed_sessions(rt, [key], sessions)
    print(f"setup (1): {sessions:,} live sessions on one license in {time.perf_counter() - started:.1f} s", flush=True)

    store = CallMeter(rt.store, REBUILD_READS)
    seats = CallMeter(rt.seats, ("restore",))
    rt.redis.flushdb()
    rebuilds.lines.clear()
    started = time.perf_counter()
    try:
        rt.seat_service.acquire_seat(Principal("newcomer"), AcquireRequest(license_key=key, hardware_id="hw"))
        refused = False
    except NoSeatAvailable:
        refused = True
    acquire_ms = (time.perf_counter() - started) * 1000
    live = rt.seats.live_count(lic_id, now_ms=clock.now_ms())
    if not refused or live != sessions or len(rebuilds.lines) != 1:
        raise RuntimeError(f"(1): expected the newcomer refused and {sessions} restored, got refused={refused}, "
                           f"{live} live, rebuilds {rebuilds.lines}")
    rebuild_ms = int(rebuilds.lines[0].rsplit(" in ", 1)[1].removesuffix(" ms"))
    figures: dict[str, Any] = {
        "phase": "(1) one license", "sessions": sessions, "restored": live, "acquire_ms": round(acquire_ms, 1),
        "rebuild_ms": rebuild_ms, "firestore_s": round(sum(store.seconds.values()), 3),
        "firestore_queries": sum(store.calls.values()), "firestore_docs": sum(store.records.values()),
        "restore_seats_ms": round(seats.seconds["restore"] * 1000, 1), "rebuild_log": rebuilds.lines[0],
    }
    print(f"(1) flush, then an acquire on a license of {sessions:,} live sessions: refused 409 after the inline "
          f"rebuild in {acquire_ms:.0f} ms\n    rebuild {rebuild_ms} ms, of which Firestore "
          f"{figures['firestore_s'] * 1000:.0f} ms ({figures['firestore_queries']} queries, "
          f"{figures['firestore_docs']:,} documents) and restore_seats {figures['restore_seats_ms']:.0f} ms; "
          f"{live:,} leases live again", flush=True)
    return figures


def all_licenses(settings: Any, clock: Any, sessions: int, licenses: int, rebuilds: RebuildLog) -> dict[str, Any]:
    """(2): one sweep's recovery walk over every license after a flush."""
    from shared.licensing.provisioning import LicenseSpec
    from shared.licensing.sweep import Sweeper
    from shared.runtime import Runtime

    per_license = sessions // licenses
    rt = Runtime(replace(settings, project_id=f"demo-loss-all-{secrets.token_hex(4)}"), clock=clock)
    rt.provisioning.create_tenant("Loss bench", tenant_id="loss-bench", actor="bench")
    started = time.perf_counter()
    issued = [rt.provisioning.create_license(LicenseSpec(tenant_id="loss-bench", max_seats=per_license,
                                                         lease_ttl_s=3600), actor="bench")
              for _ in range(licenses)]
    seed_sessions(rt, [i.license_key for i in issued], per_license)
    print(f"setup (2): {per_license * licenses:,} live sessions on {licenses} licenses in "
          f"{time.perf_counter() - started:.1f} s", flush=True)

    store = CallMeter(rt.store, STORE_READS)
    seats = CallMeter(rt.seats, ("restore",))
    sweeper = Sweeper(seats=rt.seats, ledger=rt.sweep_ledger, store=rt.store, licenses=rt.licenses, clock=clock,
                      history=rt.usage_history, budget_s=3600)
    # The usage history is up to date (no hour due to close): the run's writes are the recovery's.
    rt.usage.set_closed_through(rt.usage_history.first_open_hour(fresh=True))
    rt.redis.flushdb()
    rebuilds.lines.clear()
    started = time.perf_counter()
    report = sweeper.run().as_json()
    wall_s = time.perf_counter() - started
    live = sum(rt.seats.live_count(i.license.id, now_ms=clock.now_ms()) for i in issued)
    if not (report["recovered"] and report["complete"]) or live != per_license * licenses:
        raise RuntimeError(f"(2): expected a complete recovery of {per_license * licenses} leases, "
                           f"got {live}: {report}")
    reads = {name: store.calls[name] for name in STORE_READS if store.calls[name]}
    figures: dict[str, Any] = {
        "phase": "(2) all licenses", "sessions": per_license * licenses, "licenses": licenses,
        "restored": live, "wall_s": round(wall_s, 3), "rebuilt": report["rebuilt"],
        "firestore_s": round(sum(store.seconds[n] for n in STORE_READS), 3),
        "firestore_queries": sum(reads.values()), "firestore_docs": sum(store.records[n] for n in STORE_READS),
        "firestore_queries_by_call": reads, "firestore_writes": report["firestore_writes"],
        "restore_seats_s": round(seats.seconds["restore"], 3), "sweep_report": report,
    }
    print(f"(2) flush, then one sweep over {licenses} licenses of {per_license * licenses:,} live sessions: "
          f"{wall_s:.2f} s, {report['rebuilt']} licenses rebuilt, {live:,} leases live again\n"
          f"    Firestore {figures['firestore_s']:.2f} s: {figures['firestore_queries']} reads "
          f"({', '.join(f'{k} {v}' for k, v in reads.items())}), {figures['firestore_docs']:,} documents, "
          f"{report['firestore_writes']} writes; restore_seats {figures['restore_seats_s']:.2f} s", flush=True)
    return figures


def wait_cost(acquires: int, wait_timeout_ms: int) -> dict[str, Any]:
    """(3): SeatTable.acquire p50/p99 on a primary with one replica, without and with WAIT."""
    from devstack.processes import wait_until
    from devstack.redis_server import DEBIAN_REDIS_7, RedisServer
    from shared.errors import BackendUnavailable
    from shared.seats import SeatTable
    from shared.seats.connection import connect

    primary = RedisServer(DEBIAN_REDIS_7).start()
    replica = RedisServer(DEBIAN_REDIS_7, extra_args=("--replicaof", "127.0.0.1", str(primary.port)))
    try:
        replica.start()
        probe = connect(replica.url)
        wait_until(lambda: probe.info("replication")["master_link_status"] == "up", timeout_s=10,
                   what="the replication link")
        client = connect(primary.url)
        version = client.info("server")["redis_version"]
        tables = {0: SeatTable(client), 1: SeatTable(client, wait_replicas=1, wait_timeout_ms=wait_timeout_ms)}
        now_ms = int(time.time() * 1000)
        latencies: dict[int, list[float]] = {0: [], 1: []}
        refused = {0: 0, 1: 0}
        licenses = {}
        for replicas, table in tables.items():
            lic_id = f"lic_wait{replicas}_{secrets.token_hex(6)}"
            table.restore(lic_id, [], now_ms=now_ms, ttl_ms=3_600_000, complete=True)  # a trusted, empty table
            licenses[replicas] = (lic_id, table.generation(lic_id))
        rounds = 4  # alternate the two modes, so drift hits both alike
        for r in range(rounds):
            for replicas, table in tables.items():
                lic_id, generation = licenses[replicas]
                for n in range(r * acquires // rounds, (r + 1) * acquires // rounds):
                    started = time.perf_counter()
                    try:
                        outcome = table.acquire(lic_id, generation=generation, now_ms=now_ms, ttl_ms=3_600_000,
                                                max_seats=acquires + 1, uid=f"u{n}", hardware_id="hw",
                                                new_session_id=f"{lic_id}.s{n:08d}")
                    except BackendUnavailable:
                        refused[replicas] += 1
                        continue
                    latencies[replicas].append((time.perf_counter() - started) * 1000)
                    if outcome.kind != "GRANTED":
                        raise RuntimeError(f"(3): acquire {n} answered {outcome.kind}, not GRANTED")
        figures: dict[str, Any] = {"phase": "(3) acquire with and without WAIT", "redis_version": version,
                                   "acquires": acquires, "wait_timeout_ms": wait_timeout_ms}
        for replicas, values in latencies.items():
            figures[f"wait_replicas_{replicas}"] = {
                "granted": len(values), "refused": refused[replicas],
                "p50_ms": round(percentile(values, 0.5), 3) if values else None,
                "p99_ms": round(percentile(values, 0.99), 3) if values else None,
                "max_ms": round(max(values), 3) if values else None,
            }
        print(f"(3) SeatTable.acquire on a plain Redis {version} primary + 1 replica (loopback), {acquires:,} "
              f"acquires each, one at a time:", flush=True)
        for replicas in (0, 1):
            stats = figures[f"wait_replicas_{replicas}"]
            label = "wait_replicas 0 (no WAIT)" if replicas == 0 else f"wait_replicas 1 (WAIT 1 {wait_timeout_ms})"
            print(f"    {label:<28} p50 {_ms(stats['p50_ms'])} ms  p99 {_ms(stats['p99_ms'])} ms  "
                  f"max {_ms(stats['max_ms'])} ms  ({stats['granted']:,} granted, {stats['refused']} refused)",
                  flush=True)
        return figures
    finally:
        replica.stop()
        primary.stop()


def figures_table(one: dict[str, Any], every: dict[str, Any], wait: dict[str, Any]) -> list[str]:
    off, on = wait["wait_replicas_0"], wait["wait_replicas_1"]
    rows = [
        [f"(1) rebuild of one license, {one['sessions']:,} live sessions", f"{one['rebuild_ms']} ms",
         f"acquire incl. rebuild {one['acquire_ms']:.0f} ms; Firestore {one['firestore_docs']:,} documents"],
        [f"(2) recovery sweep, {every['licenses']} licenses, {every['sessions']:,} live sessions",
         f"{every['wall_s']:.2f} s",
         f"Firestore {every['firestore_queries']} reads, {every['firestore_docs']:,} documents"],
        ["(3) acquire p50 / p99, no WAIT", f"{_ms(off['p50_ms'])} / {_ms(off['p99_ms'])} ms",
         f"{off['granted']:,} granted"],
        ["(3) acquire p50 / p99, WAIT for 1 replica", f"{_ms(on['p50_ms'])} / {_ms(on['p99_ms'])} ms",
         f"{on['granted']:,} granted, {on['refused']} refused (timeout {wait['wait_timeout_ms']} ms)"],
    ]
    return ["", "Figures", *("    " + line for line in text_table(FIGURE_HEADERS, rows, "lrl"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench-loss", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sessions", type=_positive_int, default=1000,
                        help="live sessions on the one license of (1) (default 1000)")
    parser.add_argument("--all-sessions", type=_positive_int, default=10_000,
                        help="live sessions over all licenses of (2) (default 10000)")
    parser.add_argument("--licenses", type=_positive_int, default=100,
                        help="licenses of (2), sessions spread evenly (default 100)")
    parser.add_argument("--acquires", type=_positive_int, default=2000,
                        help="acquires per mode in (3) (default 2000)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.all_sessions < args.licenses:
        parser.error("--all-sessions must be at least --licenses (every license gets all_sessions//licenses)")

    from devstack.stack import LocalStack
    from shared.clock import ManualClock
    from shared.config import Settings
    from shared.domain import Limit

    rebuilds = RebuildLog()
    rebuild_logger = logging.getLogger("shared.licensing.rebuild")
    rebuild_logger.addHandler(rebuilds)
    rebuild_logger.propagate = False  # a line per license rebuilt: collected, not printed

    with LocalStack.start() as stack:
        stack.apply_env()
        # Seeding grants faster than any client may: the per-license limit off.
        settings = replace(Settings.from_env(), rate_limit_license_acquire=Limit(0, 0))
        clock = ManualClock(start_ms=int(time.time() * 1000))
        print(f"scripts/bench-loss --sessions {args.sessions} --all-sessions {args.all_sessions} "
              f"--licenses {args.licenses} --acquires {args.acquires}   (nproc {os.cpu_count()})\n"
              f"  redis (1)(2): {stack.components()['redis']['describe']}\n"
              f"  firestore: {stack.firestore_emulator.describe()}", flush=True)
        one = one_license(settings, clock, args.sessions, rebuilds)
        every = all_licenses(settings, clock, args.all_sessions, args.licenses, rebuilds)
    wait = wait_cost(args.acquires, settings.redis_wait_timeout_ms)
    print("\n".join(figures_table(one, every, wait)), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([one, every, wait], handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
