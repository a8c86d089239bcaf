"""The plain-text report of scripts/bench, rendered from its JSON document.

Its closing Targets table (`targets_section`) also ends scripts/bench-sweep's output.
"""

from __future__ import annotations

from typing import Any

SEAT_OPS = ("acquire", "heartbeat", "release", "validate")
P99_TARGET_MS = 20.0
TARGETS = {
    "heartbeat_sat_over_bare": 0.50,
    "acquire_sat_over_bare": 0.30,
    "seat_lib_over_bare_evalsha": 0.80,
    "acquire_policies_over_plain": 0.80,  # issue 14: every seat policy on costs an acquire at most 20 %
}
TARGET_HEADERS = ["figure", "measured", "target", "verdict"]


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def _errors(counts: dict[str, int]) -> str:
    return ", ".join(f"{label} x{n}" for label, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def text_table(headers: list[str], rows: list[list[str]], align: str) -> list[str]:
    """Lines of a plain-text table: a header, a rule, the rows; `align` is "l" or "r" per column."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if a == "l" else str(c).rjust(w) for c, w, a in zip(cells, widths, align, strict=True)
        ).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *[line(r) for r in rows]]


NOT_SERVER = ("load generator (node)", "bench (python)", "other processes")

OP_HEADERS = ["operation", "count", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "ok",
              "expected err", "unexpected err", "server p50/p99 ms"]
OP_ALIGN = "lrrrrrrrrrr"


def _op_row(label: str, stats: dict[str, Any] | None) -> list[str]:
    if not stats:
        return [label, "0", "-", "-", "-", "-", "-", "-", "-", "-", "-"]
    lat = stats["latency_ms"]
    server = stats.get("server_latency_ms") or {}
    server_text = "-" if not server.get("count") else f"{_num(server['p50'], 2)} / {_num(server['p99'], 2)}"
    return [
        label, f"{stats['count']:,}", _num(stats["rps"]), _num(lat["p50"], 2), _num(lat["p95"], 2),
        _num(lat["p99"], 2), _num(lat["max"], 1), f"{stats['ok']:,}", str(stats["expected_error_count"]),
        str(stats["unexpected_error_count"]), server_text,
    ]


def _error_lines(label: str, stats: dict[str, Any] | None) -> list[str]:
    lines = []
    if stats and stats["expected_errors"]:
        lines.append(f"    {label}: expected errors: {_errors(stats['expected_errors'])}")
    if stats and stats["unexpected_errors"]:
        lines.append(f"    {label}: UNEXPECTED errors: {_errors(stats['unexpected_errors'])}")
    return lines


def _rounds(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


def _warmup_summary(doc: dict[str, Any]) -> str:
    warm = doc["phases"].get("warm-up")
    if not warm:
        return "skipped"
    ops = warm["ops"].values()
    unexpected: dict[str, int] = {}
    for stats in ops:
        for label, n in stats["unexpected_errors"].items():
            unexpected[label] = unexpected.get(label, 0) + n
    return (f"{doc['settings']['warmup_s']:g} s, {warm['connections']} connections, "
            f"{sum(st['count'] for st in ops):,} requests, unexpected errors: {_errors(unexpected) or '0'}")


def _cpu_per_request(cpu_s: float | None, stats: dict[str, Any] | None) -> str:
    if not cpu_s or not stats or not stats["count"]:
        return "-"
    return f"{cpu_s / stats['count'] * 1000:.3f}"


def _windows_line(label: str, stats: dict[str, Any] | None) -> str | None:
    windows = (stats or {}).get("windows_10s") or []
    if len(windows) < 2:
        return None
    values = " / ".join("-" if w is None else f"{w['p99']:.1f}" for w in windows)
    return f"    {label:9s} p99 per 10 s: {values} ms"


def _cpu_line(phase: dict[str, Any]) -> str:
    wall = phase.get("elapsed_s") or phase["wall_s"]
    cpu = phase["cpu_s"]
    total = sum(cpu.values())
    order = sorted(cpu.items(), key=lambda kv: -kv[1])
    parts = ", ".join(f"{role} {v / wall * 100:.0f}%" for role, v in order if v >= 0.005 * wall)
    workers = "/".join(f"{v / wall * 100:.0f}" for v in phase["worker_cpu_s"])
    return f"    CPU (100% = 1 core; 2 cores = 200%): total {total / wall * 100:.0f}%: {parts}; per worker {workers}%"


def render(doc: dict[str, Any]) -> str:
    out: list[str] = []
    m, server, settings = doc["machine"], doc["server"], doc["settings"]
    out += [
        "scripts/bench: license server, running local stack",
        f"command : {doc['command']}",
        f"started : {doc['started_at']}   run id {doc['run_id']} (tenant {doc['tenant']}, created in "
        f"{settings['fixtures_s']} s)",
        f"machine : nproc {m['nproc']} ({m['cpu_model']}), {m['memory_gib']} GiB RAM, Linux {m['kernel']}",
        f"software: Python {m['python']} (bench and server), Node {m['node']} + undici {m['undici']} "
        f"(load generator, same cores), redis-server {m['redis_server']}",
        f"server  : {server['base_url']} (stack pid {server['stack_pid']}): gunicorn {server['gunicorn_app']} "
        f"{' '.join(server['gunicorn_flags'])}",
        f"          = {server['workers']} workers x {server['threads']} threads, worker class "
        f"{server['worker_class']}, reuse-port {'on' if server['reuse_port'] else 'off'}; "
        f"worker pids {', '.join(map(str, server['gunicorn_worker_pids']))}",
        "latency : client side (request sent -> body read); 'server' = latency_ms of the function's own log line",
    ]

    busiest = max(
        ((name, ph["cpu_s"].get("other processes", 0.0) / (ph.get("elapsed_s") or ph["wall_s"]))
         for name, ph in doc["phases"].items()),
        key=lambda item: item[1], default=None,
    )
    if busiest and busiest[1] >= 0.10:
        out.append(f"WARNING : other processes on this machine used up to {busiest[1] * 100:.0f}% CPU "
                   f"(in '{busiest[0]}'); every figure shares the 2 cores with them")

    # (a) reference profile
    ref = doc["phases"]["reference"]
    mix = settings["mix"]
    total_w = sum(mix.values())
    mix_text = " / ".join(f"{k} {v:g}" for k, v in mix.items())
    share = " / ".join(f"{100 * v / total_w:.1f}%" for v in mix.values())
    conns = ref.get("connections")
    out += [
        "",
        f"(a) Reference profile: {settings['users']} users, think U({settings['think_s'][0]:g}, "
        f"{settings['think_s'][1]:g}) s, weights {mix_text} (= {share}),",
        f"    {settings['licenses']} licenses ({min(settings['license_seats'])}-{max(settings['license_seats'])} seats "
        f"each, enough for their users), {conns} keep-alive connections"
        f"{' (one per user)' if settings['user_connections'] == 0 else ' (shared pool)'};",
        f"    measured {ref['elapsed_s']:.1f} s after a login ramp (each user's first acquire spread over "
        f"{settings['ramp_s']:g} s)",
    ]
    rows = [_op_row(op, ref["ops"].get(op)) for op in SEAT_OPS]
    total = {"count": 0, "rps": 0.0, "ok": 0, "expected_error_count": 0, "unexpected_error_count": 0}
    for op in SEAT_OPS:
        st = ref["ops"].get(op)
        if st:
            for k in total:
                total[k] += st[k]
    rows.append(["all", f"{total['count']:,}", _num(total["rps"]), "", "", "", "", f"{total['ok']:,}",
                 str(total["expected_error_count"]), str(total["unexpected_error_count"]), ""])
    ramp = (ref.get("ramp") or {}).get("acquire")
    if ramp:
        rows.append(_op_row(f"login ramp acquire ({ref['ramp']['elapsed_s']:.1f} s)", ramp))
    out += ["    " + line for line in text_table(OP_HEADERS, rows, OP_ALIGN)]
    acq = ref["ops"].get("acquire") or {}
    variants = ", ".join(f"{k} x{v['count']:,} (p50 {_num(v['p50'], 2)} / p99 {_num(v['p99'], 2)} ms)"
                         for k, v in sorted((acq.get("variants") or {}).items()))
    subst = ref.get("substituted_by_acquire") or {}
    realised = " / ".join(
        f"{op} {100 * (ref['ops'].get(op) or {}).get('count', 0) / max(1, total['count']):.1f}%" for op in SEAT_OPS
    )
    out.append(f"    realised mix: {realised}; heartbeat/release drawn by a user without a session were sent as "
               f"acquire: {subst.get('heartbeat', 0)}/{subst.get('release', 0)}")
    out.append(f"    acquire answers: {variants or '-'}")
    out.append("      (201 writes the session to Firestore; 200 = the user's live session on the same hardware, "
               "Redis only)")
    for op in SEAT_OPS:
        out += _error_lines(op, ref["ops"].get(op))
    if ramp:
        out += _error_lines("login ramp acquire", ramp)
    for op in SEAT_OPS:
        line = _windows_line(op, ref["ops"].get(op))
        if line:
            out.append(line)
    if ref.get("connections_per_worker"):
        out.append(f"    client connections per gunicorn worker at mid-run: "
                   f"{' / '.join(map(str, ref['connections_per_worker']))}")
    if ref["server_error_lines"]:
        out.append(f"    server logged {ref['server_error_lines']} ERROR/5xx lines, "
                   f"e.g. {ref['server_error_samples'][0]}")
    out.append(_cpu_line(ref))

    # (b) saturation and (c) bare function
    out += ["", f"(b) Saturation: closed loop, {settings['connections']} connections, "
                f"{settings['sat_duration_s']:g} s per operation   (c) bare no-op function, same gunicorn flags, "
                f"same generator"]
    rows, notes = [], []
    for op, name in [(op, f"sat {op}") for op in SEAT_OPS[:1]] + [("acquire", "sat acquire (policies)")] + \
            [(op, f"sat {op}") for op in SEAT_OPS[1:] + ("health",)]:
        phase = doc["phases"].get(name)
        if not phase:
            continue
        label = {"sat acquire (policies)": "acquire, every seat policy on"}.get(name, op)
        label = "health (GET, no backend)" if op == "health" else label
        stats = phase["ops"].get(op)
        server_cpu = sum(v for role, v in phase["cpu_s"].items() if role not in NOT_SERVER)
        rows.append(_op_row(label, stats) + [_cpu_per_request(server_cpu, stats)])
        notes += _error_lines(label, phase["ops"].get(op))
        notes += [f"    {label}: {n}" for n in phase.get("notes", [])]
    bare = doc["bare_function"]
    rows.append(_op_row("(c) bare function (POST)", bare["ops"].get("noop"))
                + [_cpu_per_request(bare.get("server_cpu_s"), bare["ops"].get("noop"))])
    notes += _error_lines("bare function", bare["ops"].get("noop"))
    out += ["    " + line for line in text_table(OP_HEADERS + ["server CPU ms/req"], rows, OP_ALIGN + "r")]
    out.append("    server CPU ms/req: CPU time of every stack process (gunicorn, Redis, Firestore emulator, "
               "scripts/dev) per answered request; for (c) the bare server's")
    out += notes
    acquired = doc["phases"].get("sat acquire", {})
    if acquired:
        sessions = (acquired["ops"].get("acquire") or {}).get("ok", 0)
        out.append(f"    heartbeat cycled through {min(sessions, settings['heartbeat_sessions'])} live sessions; "
                   f"release drew from the {sessions} sessions the acquire phase made")
    docs = doc.get("firestore_documents") or {}
    if docs:
        counts = "; ".join(f"{when}: " + ", ".join(f"{k} {v:,}" for k, v in c.items()) for when, c in docs.items())
        out.append(f"    Firestore emulator documents ({counts}); its writes slow down as a collection grows")
    for op in SEAT_OPS + ("health",):
        phase = doc["phases"].get(f"sat {op}")
        if phase:
            conns = phase.get("connections_per_worker") or []
            spread = f"; connections per worker {'/'.join(map(str, conns))}" if conns else ""
            out.append(_cpu_line(phase).replace("    CPU", f"    {op:9s} CPU") + spread)
    out.append(f"    bare function: load generator used {bare['generator_cpu_s'] / bare['elapsed_s'] * 100:.0f}% "
               f"of a core")

    # (d) redis
    r = doc["redis_evalsha"]
    out += [
        "",
        f"(d) Redis, acquire_seat script, one call at a time, {r['calls_per_round']:,} calls x {r['rounds']} rounds "
        f"each way (best round counts):",
        f"    bare redis-py EVALSHA  {r['bare_per_s']:>10,.0f} calls/s   rounds {_rounds(r['bare_rounds_per_s'])}",
        f"    SeatTable.acquire      {r['lib_per_s']:>10,.0f} calls/s   rounds {_rounds(r['lib_rounds_per_s'])}",
        f"    seat library / bare    {r['ratio'] * 100:>9.1f} %",
    ]

    # (e) KMS
    k = doc["kms"]
    out += [
        "",
        "(e) KMS AsymmetricSign calls (= 'delegation certificate issued' lines in .dev/functions.log)",
        f"    already in the log before this run (earlier runs, and earlier stacks: the log is appended to): "
        f"{k['before_this_run']}",
        f"    warm-up ({_warmup_summary(doc)}):",
        f"      {k['warmup_calls']} calls over {k['warmup_acquires_heartbeats']} acquires+heartbeats "
        f"(one per gunicorn worker process is expected: {server['workers']} workers)",
        f"    steady state (reference + saturation): {k['steady_calls']} calls over "
        f"{k['steady_acquires_heartbeats']:,} acquires+heartbeats = {_num(k['steady_per_1000'], 3)} per 1000",
    ]

    # (f) memory
    mem = doc["memory"]
    roles = ", ".join(f"{role} {v:.0f}" for role, v in sorted(mem["peak_by_role_mib"].items(), key=lambda kv: -kv[1]))
    per_phase = ", ".join(f"{p} {v:.0f}" for p, v in mem["per_phase_peak_rss_mib"].items())
    pss = ", ".join(f"{when} {v:.0f} MiB" for when, v in mem["pss_mib"].items())
    out += [
        "",
        f"(f) Peak RSS of the stack (pid {server['stack_pid']} and every descendant, summed; sampled every "
        f"{mem['interval_s']:g} s, {mem['samples']} samples)",
        f"    peak {mem['peak_rss_mib']:.1f} MiB during '{mem['peak_phase']}' (idle before load: "
        f"{mem['idle_rss_mib']:.1f} MiB)",
        f"    at the peak, MiB: {roles}",
        f"    peak per phase, MiB: {per_phase}",
        f"    PSS (pages shared by the forked workers counted once): {pss}",
    ]

    # Targets
    ratios = doc["ratios"]
    sat = doc["phases"]
    rows = []
    for op in SEAT_OPS:
        st = ref["ops"].get(op)
        p99 = st["latency_ms"]["p99"] if st else None
        rows.append([f"reference p99 {op}", f"{_num(p99, 2)} ms", f"<= {P99_TARGET_MS:g} ms",
                     verdict(None if p99 is None else p99 <= P99_TARGET_MS)])
    rows.append(["reference unexpected errors", str(total["unexpected_error_count"] +
                                                    (ramp["unexpected_error_count"] if ramp else 0)),
                 "0", verdict(total["unexpected_error_count"] == 0 and not (ramp and ramp["unexpected_error_count"]))])
    bare_rps = ratios["bare_function_rps"]
    for key, op in (("heartbeat_sat_over_bare", "heartbeat"), ("acquire_sat_over_bare", "acquire")):
        value = ratios[key]
        rps = (sat[f"sat {op}"]["ops"].get(op) or {}).get("rps", 0.0)
        percent = _num(None if value is None else value * 100)
        rows.append([f"{op} saturation / bare function", f"{rps:,.0f} / {bare_rps:,.0f} = {percent} %",
                     f">= {TARGETS[key] * 100:.0f} %", verdict(None if value is None else value >= TARGETS[key])])
    value = ratios.get("acquire_policies_over_plain")
    with_policies = (sat.get("sat acquire (policies)", {}).get("ops", {}).get("acquire") or {}).get("rps", 0.0)
    plain = (sat["sat acquire"]["ops"].get("acquire") or {}).get("rps", 0.0)
    rows.append(["acquire saturation, every seat policy on / none",
                 f"{with_policies:,.0f} / {plain:,.0f} = {_num(None if value is None else value * 100)} %",
                 f">= {TARGETS['acquire_policies_over_plain'] * 100:.0f} %",
                 verdict(None if value is None else value >= TARGETS["acquire_policies_over_plain"])])
    value = ratios["seat_lib_over_bare_evalsha"]
    rows.append(["SeatTable.acquire / bare EVALSHA",
                 f"{r['lib_per_s']:,.0f} / {r['bare_per_s']:,.0f} = {value * 100:.1f} %",
                 f">= {TARGETS['seat_lib_over_bare_evalsha'] * 100:.0f} %",
                 verdict(value >= TARGETS["seat_lib_over_bare_evalsha"])])
    per_1000 = k["steady_per_1000"]
    rows.append(["KMS calls per 1000 acquires+heartbeats (steady)", _num(per_1000, 3), "0",
                 verdict(None if per_1000 is None else per_1000 == 0)])
    rows.append(["KMS calls in warm-up", str(k["warmup_calls"]), f"<= {server['workers']} (1 per worker)",
                 verdict(None if k["warmup_calls"] is None else k["warmup_calls"] <= server["workers"])])
    rows.append(["peak RSS of the stack", f"{mem['peak_rss_mib']:.1f} MiB", "(reported)", ""])
    out += targets_section(rows)
    return "\n".join(out)


def targets_section(rows: list[list[str]]) -> list[str]:
    """The closing "Targets" table of scripts/bench and scripts/bench-sweep: one row per target."""
    return ["", "Targets", *("    " + line for line in text_table(TARGET_HEADERS, rows, "lrll"))]
