"""scripts/bench: measure the running local stack and print one table.

Order of a run (each phase bounded in time; traffic only to the stack's 127.0.0.1 URL
and a reference server this script starts on a free loopback port):
    fixtures    a fresh tenant bench-<run id>, its licenses, user tokens
    warm-up     closed loop over every operation: per-worker caches and the one KMS
                call per worker process (counted separately from steady state)
    reference   (a) simulated users with think time
    saturation  (b) closed loop per operation: acquire, heartbeat, release, validate,
                and GET health (no backend) for reference
    bare        (c) a no-op functions-framework function under the stack's gunicorn flags
    redis       (d) raw EVALSHA of the acquire script vs. SeatTable.acquire
KMS calls (e) come from .dev/functions.log, memory (f) from /proc, all along.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench_lib import fixtures as fixtures_mod
from bench_lib import redis_loop, report
from bench_lib.bare_function import start_bare_server
from bench_lib.function_log import FunctionLog, LogSlice
from bench_lib.loadgen import LoadgenError, node_version, run_phase, undici_version
from bench_lib.stack_facts import (
    MemorySampler,
    Stack,
    cpu_by_role,
    cpu_seconds,
    established_per_worker,
    flag_value,
    gunicorn_flags,
    gunicorn_processes,
    load_stack,
    machine_busy_seconds,
    pss_by_role,
    state_dir,
)
from devstack.stack import REPO

SEAT_OPS = ("acquire", "heartbeat", "release", "validate")


def _mix(text: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in SEAT_OPS:
            raise argparse.ArgumentTypeError(f"unknown operation {name!r} in --mix (use {', '.join(SEAT_OPS)})")
        try:
            weights[name] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"weight of {name} must be a number, got {value!r}") from None
        if weights[name] < 0:
            raise argparse.ArgumentTypeError(f"weight of {name} must be >= 0")
    if "acquire" not in weights or weights["acquire"] <= 0:
        raise argparse.ArgumentTypeError("--mix needs a positive acquire weight (users need sessions)")
    return weights


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Benchmark the running local stack (./scripts/dev): reference profile, saturation per "
                    "operation, bare-function and raw-Redis ceilings, KMS calls, peak RSS.",
    )
    ref = parser.add_argument_group("(a) reference profile")
    ref.add_argument("--users", type=_positive(int), default=1000, help="simulated users (default 1000)")
    ref.add_argument("--duration", type=_positive(float), default=60.0,
                     help="measured seconds of the reference profile (default 60)")
    ref.add_argument("--think", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"),
                     help="think time between a user's requests, uniform, seconds (default 1 3)")
    ref.add_argument("--mix", type=_mix, default=_mix("acquire=10,heartbeat=50,release=5,validate=20"),
                     help="operation weights (default acquire=10,heartbeat=50,release=5,validate=20)")
    ref.add_argument("--ramp", type=float, default=10.0,
                     help="login ramp before the measured window: every user's first acquire, spread "
                          "over this many seconds (default 10)")
    ref.add_argument("--licenses", type=_positive(int), default=10,
                     help="reference licenses the users are spread over (default 10)")
    ref.add_argument("--user-connections", type=int, default=0,
                     help="0 (default): one keep-alive connection per user; N: users share a pool of N")
    sat = parser.add_argument_group("(b, c) saturation")
    sat.add_argument("--connections", type=_positive(int), default=64, help="closed-loop connections (default 64)")
    sat.add_argument("--sat-duration", type=_positive(float), default=12.0,
                     help="seconds per saturated operation, and for the bare function (default 12)")
    sat.add_argument("--heartbeat-sessions", type=_positive(int), default=640,
                     help="live sessions the heartbeat phase cycles through (default 640)")
    other = parser.add_argument_group("other")
    other.add_argument("--warmup", type=float, default=5.0,
                       help="warm-up seconds before the reference profile (default 5)")
    other.add_argument("--redis-calls", type=_positive(int), default=15000,
                       help="calls per round of the raw-Redis comparison, 3 rounds each way (default 15000)")
    other.add_argument("--json", metavar="PATH", type=Path, help="also write every figure as JSON to PATH")
    args = parser.parse_args(argv)
    if not 0 <= args.think[0] <= args.think[1]:
        parser.error("--think MIN MAX needs 0 <= MIN <= MAX")
    if args.ramp < 0 or args.warmup < 0:
        parser.error("--ramp and --warmup must be >= 0")
    return args


@dataclass
class PhaseRecord:
    """One load phase: the generator's figures and what the server side showed meanwhile."""

    name: str
    wall_s: float
    load: dict[str, Any]
    log: LogSlice
    cpu_s: dict[str, float]
    worker_cpu_s: list[float]
    connections_per_worker: list[int] = field(default_factory=list)
    before_window: LogSlice | None = None  # the server's log during a login ramp

    @property
    def kms_certificates(self) -> int:
        """KMS calls from the phase's start (its ramp included) to its end."""
        return self.log.kms_certificates + (self.before_window.kms_certificates if self.before_window else 0)

    def count(self, op: str) -> int:
        stats = self.load.get("ops", {}).get(op)
        return stats["count"] if stats else 0


class Bench:
    def __init__(self, stack: Stack, args: argparse.Namespace, command: str):
        self.stack = stack
        self.args = args
        self.command = command
        self.log = FunctionLog(stack.log_file)
        self.master, self.workers = gunicorn_processes(stack.pid)
        self.app, self.flags = gunicorn_flags(self.master)
        self.sampler = MemorySampler(stack.pid)
        self.phases: dict[str, PhaseRecord] = {}
        self.started = datetime.now(UTC)
        self.run_id = fixtures_mod.new_run_id()

    # -- one measured phase -------------------------------------------------------------
    def _phase(self, name: str, plan: dict) -> PhaseRecord:
        """Run `plan` as phase `name`, with log/CPU snapshots of the stack around its measured window."""
        before = self._snapshot()
        at_window: dict[str, Any] = {}
        probed: list[int] = []

        def on_event(event: str) -> None:
            if event == "window":
                at_window.update(self._snapshot())
            elif event == "midpoint":
                probed.extend(established_per_worker(self.workers, self.stack.port).values())

        self.sampler.phase = name
        started = time.monotonic()
        load = run_phase(plan, hard_limit_s=plan.get("duration_s", 0) + plan.get("ramp_s", 0) + 90,
                         on_event=on_event)
        wall = time.monotonic() - started
        self.sampler.phase = f"after {name}"
        time.sleep(0.3)  # let the phase's last log lines reach the file
        window = at_window or before
        after = self._snapshot()
        record = PhaseRecord(
            name=name,
            wall_s=wall,
            load=load,
            log=self.log.read(window["log"], after["log"]),
            cpu_s={role: after["cpu"].get(role, 0.0) - window["cpu"].get(role, 0.0) for role in after["cpu"]},
            worker_cpu_s=[a - b for a, b in zip(after["workers"], window["workers"], strict=True)],
            connections_per_worker=probed,
            before_window=self.log.read(before["log"], window["log"]) if window is not before else None,
        )
        record.cpu_s["load generator (node)"] = load.get("generator_cpu_s", 0.0)
        # Whatever else ran on the machine meanwhile (other jobs on these 2 cores skew every figure).
        busy = record.cpu_s.pop("machine busy", 0.0)
        record.cpu_s["other processes"] = max(0.0, busy - sum(record.cpu_s.values()))
        self.phases[name] = record
        return record

    def _snapshot(self) -> dict[str, Any]:
        cpu = cpu_by_role(self.stack.pid)
        cpu["bench (python)"] = sum(os.times()[:2])
        cpu["machine busy"] = machine_busy_seconds()
        return {"log": self.log.offset(), "cpu": cpu, "workers": [cpu_seconds(p) for p in self.workers]}

    def _progress(self, text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    # -- the run ------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        args, stack = self.args, self.stack
        kms_before_run = self.log.count_kms(0, self.log.offset())
        self._progress(f"run {self.run_id}: creating tenant, {args.licenses} licenses and {args.users} user tokens")
        t0 = time.monotonic()
        fx = fixtures_mod.create_fixtures(
            stack, self.run_id, users=args.users, licenses=args.licenses, sat_connections=args.connections,
            sat_max_seats=1_000_000,
        )
        fixtures_s = time.monotonic() - t0
        documents = {"before the run": fixtures_mod.firestore_document_counts(stack)}
        self.sampler.start()
        rss_idle = self.sampler.sample()
        base = {"base_url": stack.base_url}
        sat_index = len(fx.ref_license_keys)
        all_keys = fx.ref_license_keys + [fx.sat_license_key]

        if args.warmup > 0:
            self._progress(f"warm-up {args.warmup:g} s")
            self._phase("warm-up", {
                **base, "mode": "closed", "duration_s": args.warmup, "connections": min(16, args.connections),
                "ops": {"acquire": 2, "heartbeat": 2, "release": 1, "validate": 2},
                "license_keys": all_keys, "license_max_seats": fx.ref_max_seats + [fx.sat_max_seats],
                "acquire_licenses": [sat_index], "identities": [i.as_plan() for i in fx.sat_identities],
                "hw_prefix": f"warm-{self.run_id}",
            })

        self._progress(f"reference profile: {args.users} users, {args.ramp:g} s login ramp + {args.duration:g} s")
        self._phase("reference", {
            **base, "mode": "users", "duration_s": args.duration, "ramp_s": args.ramp,
            "think_s": list(args.think), "weights": args.mix, "user_connections": args.user_connections,
            "license_keys": fx.ref_license_keys, "license_max_seats": fx.ref_max_seats,
            "users": [
                {**u.as_plan(), "license": i % len(fx.ref_license_keys), "hardware_id": f"ref-{self.run_id}-{i:04d}"}
                for i, u in enumerate(fx.users)
            ],
        })
        rss_reference_pss = pss_by_role(stack.pid)

        documents["before sat acquire"] = fixtures_mod.firestore_document_counts(stack)
        closed = {**base, "mode": "closed", "duration_s": args.sat_duration, "connections": args.connections,
                  "identities": [i.as_plan() for i in fx.sat_identities]}
        self._progress(f"saturation: acquire, {args.connections} connections, {args.sat_duration:g} s")
        acquired = self._phase("sat acquire", {
            **closed, "ops": {"acquire": 1}, "license_keys": [fx.sat_license_key],
            "license_max_seats": [fx.sat_max_seats], "hw_prefix": f"sat-{self.run_id}",
        }).load.get("sessions_out", [])
        self._progress(f"saturation: acquire with every seat policy on, {args.connections} connections, "
                       f"{args.sat_duration:g} s")
        self._phase("sat acquire (policies)", {
            **closed, "ops": {"acquire": 1}, "license_keys": [fx.sat_policy_license_key],
            "license_max_seats": [fx.sat_max_seats], "hw_prefix": f"pol-{self.run_id}",
        })
        self._progress(f"saturation: heartbeat over {min(len(acquired), args.heartbeat_sessions)} live sessions")
        self._phase("sat heartbeat", {
            **closed, "ops": {"heartbeat": 1}, "license_keys": [fx.sat_license_key],
            "sessions": acquired[:args.heartbeat_sessions],
        })
        self._progress(f"saturation: release over a pool of {len(acquired)} sessions")
        self._phase("sat release", {
            **closed, "ops": {"release": 1}, "license_keys": [fx.sat_license_key],
            "license_max_seats": [fx.sat_max_seats], "license_held": [len(acquired)], "sessions": acquired,
        })
        self._progress("saturation: validate")
        self._phase("sat validate", {**closed, "ops": {"validate": 1}, "license_keys": [fx.sat_license_key]})
        self._progress("saturation: GET health (no backend)")
        self._phase("sat health", {
            **closed, "ops": {"health": 1}, "license_keys": [],
            "paths": {"health": {"path": "/health", "method": "GET"}},
        })
        rss_saturation_pss = pss_by_role(stack.pid)
        self.sampler.stop()

        self._progress(f"bare function: gunicorn {' '.join(self.flags)}")
        bare = start_bare_server(self.flags)
        try:
            plain = {**closed, "ops": {"noop": 1}, "license_keys": [],
                     "paths": {"noop": {"path": "/", "method": "POST"}}, "base_url": bare.base_url}
            # Warm the workers; not counted. At most as long as a measured phase (tiny smoke runs).
            run_phase({**plain, "duration_s": min(2.0, args.sat_duration)}, hard_limit_s=60)
            bare_cpu: dict[str, float] = {}

            def on_bare_event(event: str) -> None:
                if event == "window":
                    bare_cpu["start"] = sum(cpu_by_role(bare.process.pid).values())

            bare_started = time.monotonic()
            bare_load = run_phase(plain, hard_limit_s=args.sat_duration + 90, on_event=on_bare_event)
            bare_wall = time.monotonic() - bare_started
            bare_load["server_cpu_s"] = sum(cpu_by_role(bare.process.pid).values()) - bare_cpu.get("start", 0.0)
        finally:
            bare.stop()

        self._progress(f"redis: {args.redis_calls} calls x 3 rounds, bare EVALSHA vs SeatTable.acquire")
        rates = redis_loop.measure(_redis_client(stack), calls=args.redis_calls, rounds=3)
        kms_after_run = self.log.count_kms(0, self.log.offset())
        documents["after the run"] = fixtures_mod.firestore_document_counts(stack)

        return self._document(fx, fixtures_s, bare, bare_load, bare_wall, rates, rss_idle,
                              {"after reference": rss_reference_pss, "after saturation": rss_saturation_pss},
                              kms_before_run, kms_after_run, documents)

    # -- the JSON document (the table is printed from it) ---------------------------------
    def _document(self, fx, fixtures_s, bare, bare_load, bare_wall, rates, rss_idle, pss, kms_before_run,
                  kms_after_run, documents) -> dict[str, Any]:
        args = self.args

        def phase_doc(record: PhaseRecord) -> dict[str, Any]:
            ops = record.load.get("ops", {})
            return {
                "wall_s": round(record.wall_s, 3),
                "elapsed_s": record.load.get("elapsed_s"),
                "connections": record.load.get("connections"),
                "ops": {
                    name: {**stats, "server_latency_ms": record.log.server_percentiles(name)}
                    for name, stats in ops.items()
                },
                "timeline_per_s": record.load.get("timeline"),
                "notes": record.load.get("notes", []),
                "substituted_by_acquire": record.load.get("substituted_by_acquire"),
                "kms_certificates": record.kms_certificates,
                "server_error_lines": record.log.error_lines,
                "server_error_samples": record.log.error_samples,
                "cpu_s": {k: round(v, 3) for k, v in record.cpu_s.items()},
                "worker_cpu_s": [round(v, 3) for v in record.worker_cpu_s],
                "connections_per_worker": record.connections_per_worker,
            }

        phases = {name: phase_doc(record) for name, record in self.phases.items()}
        ref = self.phases["reference"]
        if ref.load.get("ramp", {}).get("acquire"):
            phases["reference"]["ramp"] = ref.load["ramp"]
            if ref.before_window is not None:
                ref.load["ramp"]["acquire"]["server_latency_ms"] = ref.before_window.server_percentiles("acquire")
                phases["reference"]["ramp"]["kms_certificates"] = ref.before_window.kms_certificates
        steady = [r for n, r in self.phases.items() if n != "warm-up"]
        steady_kms = sum(r.kms_certificates for r in steady)
        steady_signing = sum(r.count("acquire") + r.count("heartbeat") for r in steady)
        ramp_acquires = (ref.load.get("ramp", {}).get("acquire") or {}).get("count", 0)
        steady_signing += ramp_acquires
        warm = self.phases.get("warm-up")
        bare_rps = (bare_load["ops"].get("noop") or {}).get("rps", 0.0)

        def sat_rps(op: str) -> float:
            return (self.phases[f"sat {op}"].load["ops"].get(op) or {}).get("rps", 0.0)

        policy_rps = (self.phases["sat acquire (policies)"].load["ops"].get("acquire") or {}).get("rps", 0.0)

        mib = 1024 * 1024
        return {
            "command": self.command,
            "started_at": self.started.isoformat(timespec="seconds"),
            "run_id": self.run_id,
            "tenant": fx.tenant_id,
            "machine": machine_facts(self.stack),
            "server": {
                "base_url": self.stack.base_url,
                "stack_pid": self.stack.pid,
                "gunicorn_app": self.app,
                "gunicorn_flags": self.flags,
                "gunicorn_master_pid": self.master,
                "gunicorn_worker_pids": self.workers,
                "workers": int(flag_value(self.flags, "--workers", "1")),
                "threads": int(flag_value(self.flags, "--threads", "1")),
                "worker_class": flag_value(self.flags, "--worker-class", "sync"),
                "reuse_port": "--reuse-port" in self.flags,
            },
            "settings": {
                "users": args.users, "duration_s": args.duration, "think_s": list(args.think), "mix": args.mix,
                "ramp_s": args.ramp, "licenses": args.licenses, "license_seats": fx.ref_max_seats,
                "user_connections": args.user_connections, "connections": args.connections,
                "sat_duration_s": args.sat_duration, "heartbeat_sessions": args.heartbeat_sessions,
                "warmup_s": args.warmup, "redis_calls": args.redis_calls, "fixtures_s": round(fixtures_s, 2),
            },
            "phases": phases,
            "bare_function": {
                "argv": bare.argv,
                "wall_s": round(bare_wall, 3),
                "elapsed_s": bare_load.get("elapsed_s"),
                "ops": bare_load.get("ops", {}),
                "generator_cpu_s": bare_load.get("generator_cpu_s"),
                "server_cpu_s": round(bare_load.get("server_cpu_s", 0.0), 3),
                "timeline_per_s": bare_load.get("timeline"),
            },
            "redis_evalsha": {
                "calls_per_round": rates.calls,
                "rounds": rates.rounds,
                "bare_per_s": round(rates.bare, 1),
                "lib_per_s": round(rates.lib, 1),
                "bare_rounds_per_s": [round(v, 1) for v in rates.bare_per_s],
                "lib_rounds_per_s": [round(v, 1) for v in rates.lib_per_s],
                "ratio": round(rates.ratio, 4),
            },
            "kms": {
                "before_this_run": kms_before_run,
                "warmup_calls": warm.kms_certificates if warm else None,
                "warmup_acquires_heartbeats": (warm.count("acquire") + warm.count("heartbeat")) if warm else None,
                "steady_calls": steady_kms,
                "steady_acquires_heartbeats": steady_signing,
                "steady_per_1000": round(1000 * steady_kms / steady_signing, 4) if steady_signing else None,
                "whole_run_calls": kms_after_run - kms_before_run,
            },
            "memory": {
                "peak_rss_mib": round(self.sampler.peak_bytes / mib, 1),
                "peak_phase": self.sampler.peak_at_phase,
                "peak_by_role_mib": {k: round(v / mib, 1) for k, v in sorted(self.sampler.peak_by_role.items())},
                "idle_rss_mib": round(rss_idle / mib, 1),
                "per_phase_peak_rss_mib": {k: round(v / mib, 1) for k, v in self.sampler.per_phase_peak.items()},
                "pss_mib": {when: round(sum(v.values()) / mib, 1) for when, v in pss.items()},
                "samples": self.sampler.samples,
                "interval_s": self.sampler.interval_s,
            },
            "firestore_documents": documents,
            "ratios": {
                "bare_function_rps": round(bare_rps, 1),
                "heartbeat_sat_over_bare": round(sat_rps("heartbeat") / bare_rps, 4) if bare_rps else None,
                "acquire_sat_over_bare": round(sat_rps("acquire") / bare_rps, 4) if bare_rps else None,
                "acquire_policies_over_plain": (round(policy_rps / sat_rps("acquire"), 4) if sat_rps("acquire")
                                                else None),
                "seat_lib_over_bare_evalsha": round(rates.ratio, 4),
            },
        }


def _redis_client(stack: Stack) -> Any:
    """The stack's Redis, connected as its functions connect (TLS, AUTH from Secret Manager)."""
    fixtures_mod.point_env_at(stack)
    from shared.runtime import runtime

    return runtime().redis


def machine_facts(stack: Stack) -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    try:
        redis_version = redis_loop.redis_server_version(_redis_client(stack))
    except Exception as exc:  # noqa: BLE001 - a fact to print, not a reason to stop
        redis_version = f"unknown ({exc.__class__.__name__})"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "node": node_version(),
        "undici": undici_version(),
        "redis_server": redis_version,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    command = shlex.join(["scripts/bench", *argv])
    stack = load_stack(REPO)
    if stack is None:
        print(f"scripts/bench: no running local stack ({state_dir(REPO) / 'stack.json'} is missing or its pid is "
              "gone): start ./scripts/dev first", file=sys.stderr)
        return 2
    if not stack.base_url.startswith(("http://127.0.0.1:", "http://localhost:")):
        print(f"scripts/bench: refusing to load {stack.base_url}: only loopback stacks are benchmarked",
              file=sys.stderr)
        return 2
    try:
        if httpx.get(f"{stack.base_url}/health", timeout=5).status_code != 200:
            raise httpx.HTTPError("health is not 200")
    except httpx.HTTPError as exc:
        print(f"scripts/bench: the stack at {stack.base_url} does not answer /health ({exc}): "
              "start ./scripts/dev first", file=sys.stderr)
        return 2
    bench = Bench(stack, args, command)
    try:
        document = bench.run()
    except (LoadgenError, RuntimeError) as exc:
        print(f"scripts/bench: {exc}", file=sys.stderr)
        return 1
    finally:
        bench.sampler.stop()
    print(report.render(document))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"\nJSON written to {args.json}")
    return 0
