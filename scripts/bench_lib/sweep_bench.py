"""scripts/bench-sweep: what a sweep costs, Redis and Firestore apart.

Starts its own stack (Redis, Firestore emulator), makes `--licenses` licenses and puts
`--leases` leases on them, then times:
  (1) a sweep of all of them expired: duration, Redis time, Firestore time and writes;
  (2) a sweep of as many live leases with nothing to do (the steady state): duration,
      Firestore reads and writes, which must not grow with the (1) history left behind
      (one read: the audit's page of active sessions, a fixed slice per run).
  (0) first, the Redis side alone: the sweep's exact sequence of seat-table calls over
      the same number of expired leases, with no Firestore write in between (inside a
      full sweep the emulator's Node process competes for the same 2 cores).
Redis time is the time spent in seat-table calls; Firestore time in store calls (the
in-memory emulator here, so it says little about Firestore itself). Ends with a Targets
table laid out as scripts/bench's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from typing import Any

from bench_lib.report import targets_section, verdict

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

REDIS_TARGET_S_PER_100K = 2.0  # the Redis side of 100k expirations, measured alone


def _timed(obj: Any, names: list[str], totals: dict[str, float], counts: dict[str, int]) -> None:
    """Wrap each named method of `obj` so its calls add their seconds to `totals` and 1 to `counts`."""
    for name in names:
        method = getattr(obj, name)

        def wrapper(*args, _method=method, _name=name, **kwargs):
            started = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                totals[_name] += time.perf_counter() - started
                counts[_name] += 1

        setattr(obj, name, wrapper)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def targets(results: list[dict[str, Any]], *, leases: int) -> list[list[str]]:
    """Rows of the Targets table from the phases' figures ((0), (1), (2), (2') in that order)."""
    alone, full, live, again = results
    rows = []
    if alone["expired"]:
        per_100k = alone["wall_s"] * 100_000 / alone["expired"]
        rows.append([f"(0) Redis side alone, {alone['expired']:,} expirations",
                     f"{alone['wall_s']:.3f} s = {per_100k:.2f} s per 100k",
                     f"<= {REDIS_TARGET_S_PER_100K:g} s per 100k", verdict(per_100k <= REDIS_TARGET_S_PER_100K)])
    else:
        rows.append(["(0) Redis side alone", "no expiration", f"<= {REDIS_TARGET_S_PER_100K:g} s per 100k",
                     verdict(None)])
    rows.append(["(1) leases expired by the full sweep", f"{full['expired']:,}", f"{leases:,} (all)",
                 verdict(full["expired"] == leases)])
    rows.append(["(1) Redis side inside the full sweep", f"{full['redis_s']:.2f} s",
                 "(reported; shares the cores with the emulator)", ""])
    for label, figures in (("(2)", live), ("(2')", again)):
        rows.append([f"{label} live leases, nothing to do: Firestore reads / writes",
                     f"{figures['firestore_reads']} / {figures['firestore_writes']}",
                     f"<= 1 / 0 after {full['expired']:,} ended sessions (1: the audit's slice)",
                     verdict(figures["firestore_reads"] <= 1 and figures["firestore_writes"] == 0)])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench-sweep", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--licenses", type=_positive_int, default=1000, help="licenses (default 1000)")
    parser.add_argument("--leases", type=_positive_int, default=100_000,
                        help="leases in total, spread evenly over the licenses (default 100000)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.leases < args.licenses:
        parser.error("--leases must be at least --licenses (every license gets leases//licenses)")
    per_license = args.leases // args.licenses

    from devstack.stack import LocalStack
    from shared.clock import ManualClock
    from shared.config import Settings
    from shared.domain.leases import RestoreEntry
    from shared.licensing.provisioning import LicenseSpec
    from shared.licensing.sweep import Sweeper
    from shared.runtime import Runtime
    from shared.seats.keys import RECOVERY_EPOCH

    with LocalStack.start() as stack:
        stack.apply_env()
        # Ten minutes into an hour: the few seconds the clock moves never cross the moment an
        # hour of usage becomes due (two minutes past), so (2) and (2') close none.
        clock = ManualClock(start_ms=int(time.time()) // 3600 * 3_600_000 + 600_000)
        rt = Runtime(Settings.from_env(), clock=clock)
        print(f"scripts/bench-sweep --licenses {args.licenses} --leases {args.leases}   "
              f"(nproc {os.cpu_count()})\n  redis: {stack.components()['redis']['describe']}\n"
              f"  firestore: {stack.firestore_emulator.describe()}", flush=True)
        started = time.perf_counter()
        rt.provisioning.create_tenant("Sweep bench", tenant_id="sweep-bench", actor="bench")
        licenses = [rt.provisioning.create_license(LicenseSpec(tenant_id="sweep-bench", max_seats=per_license * 2),
                                                   actor="bench").license for _ in range(args.licenses)]

        def put_leases(tag: str, ttl_ms: int) -> None:
            for lic in licenses:
                sessions = [RestoreEntry(f"{lic.id}.{tag}{i:020d}", f"u{i}", "hw", clock.now_ms())
                            for i in range(per_license)]
                rt.seats.restore(lic.id, sessions, now_ms=clock.now_ms(), ttl_ms=ttl_ms, complete=True)
                rt.seats.index_license(lic.id)

        # (0) the Redis side alone, on licenses of its own (ids only: Redis needs no record)
        synthetic = [f"lic_{i:020d}" for i in range(args.licenses)]
        for lic_id in synthetic:
            rt.seats.restore(lic_id, [RestoreEntry(f"{lic_id}.z{i:020d}", f"u{i}", "hw", clock.now_ms())
                                      for i in range(per_license)],
                             now_ms=clock.now_ms(), ttl_ms=60_000, complete=True)
            rt.seats.index_license(lic_id)
        expire_at = clock.now_ms() + 61_000
        t0 = time.perf_counter()
        alone = 0
        for lic_id in synthetic:
            batch = rt.sweep_ledger.sweep_batch(lic_id, now_ms=expire_at, batch=250, settle_until_ms=expire_at,
                                         verify_before_ms=expire_at - 60_000)
            rt.seats.settled(lic_id, [end.session_id for end in batch.ends])
            rt.sweep_ledger.unindex_if_idle(lic_id)
            alone += len(batch.ends)
        redis_alone_s = time.perf_counter() - t0
        print(f"{'(0) Redis side alone, ' + str(alone) + ' expirations':<44} wall {redis_alone_s:7.2f} s "
              f"({3 * args.licenses} calls: sweep_batch, settled, unindex per license)", flush=True)

        put_leases("x", 60_000)
        print(f"setup: {args.licenses} licenses, {per_license * args.licenses} leases in "
              f"{time.perf_counter() - started:.1f} s", flush=True)

        redis_s: dict[str, float] = defaultdict(float)
        redis_n: dict[str, int] = defaultdict(int)
        store_s: dict[str, float] = defaultdict(float)
        store_n: dict[str, int] = defaultdict(int)
        _timed(rt.sweep_ledger, ["sweep_batch", "indexed_licenses", "unindex_if_idle", "mark_verified"],
               redis_s, redis_n)
        _timed(rt.seats, ["settled", "release", "rollback", "index_license", "restore"], redis_s, redis_n)
        _timed(rt.store, ["record_ends", "sessions", "active_sessions_page", "get_license"], store_s, store_n)
        # no recovery walk: Redis has not lost anything since this process started
        rt.redis.set(RECOVERY_EPOCH, rt.redis.info("server")["run_id"])
        sweeper = Sweeper(seats=rt.seats, ledger=rt.sweep_ledger, store=rt.store, licenses=rt.licenses,
                          history=rt.usage_history, clock=clock, budget_s=3600)
        rt.licenses.by_id(licenses[0].id)  # the directory's first load is not the sweep's cost

        def run(label: str) -> dict[str, Any]:
            redis_s.clear()
            redis_n.clear()
            store_s.clear()
            store_n.clear()
            t0 = time.perf_counter()
            report = sweeper.run().as_json()
            wall = time.perf_counter() - t0
            figures = {
                "phase": label, "wall_s": round(wall, 3), "expired": report["expired"],
                "licenses_walked": report["licenses"], "firestore_writes": report["firestore_writes"],
                "firestore_reads": store_n["sessions"] + store_n["active_sessions_page"] + store_n["get_license"],
                "redis_s": round(sum(redis_s.values()), 3), "redis_calls": sum(redis_n.values()),
                "firestore_s": round(sum(store_s.values()), 3),
                "other_s": round(wall - sum(redis_s.values()) - sum(store_s.values()), 3),
                "redis_by_call": {name: round(seconds, 3) for name, seconds in redis_s.items()},
            }
            print(f"{label:<44} wall {figures['wall_s']:7.2f} s | Redis {figures['redis_s']:6.2f} s "
                  f"({figures['redis_calls']} calls) | Firestore emulator {figures['firestore_s']:6.2f} s "
                  f"({figures['firestore_writes']} writes, {figures['firestore_reads']} reads) | "
                  f"expired {figures['expired']}, licenses {figures['licenses_walked']}", flush=True)
            print(" " * 44 + " Redis by call: " + ", ".join(f"{k} {v:.2f} s ({redis_n[k]})"
                                                            for k, v in sorted(redis_s.items(), key=lambda kv: -kv[1])))
            return figures

        clock.advance(seconds=61)
        results = [run(f"(1) {per_license * args.licenses} expired leases")]
        put_leases("l", 3_600_000)
        clock.advance(seconds=1)
        results.append(run(f"(2) {per_license * args.licenses} live leases, nothing to do"))
        results.append(run("(2') the same again"))
        results.insert(0, {"phase": "(0) Redis side alone", "wall_s": round(redis_alone_s, 3), "expired": alone})
        print("\n".join(targets_section(targets(results, leases=per_license * args.licenses))), flush=True)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
