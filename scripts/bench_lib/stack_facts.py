"""The running dev stack as the benchmark sees it: its state file and its processes.

Everything here reads /proc (Linux only), never signals or changes a process.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Flags of the stack's gunicorn that the bare reference server must share (scripts/devstack/stack.py).
FALLBACK_GUNICORN_FLAGS = [
    "--workers", "3", "--threads", "8", "--worker-class", "gthread",
    "--graceful-timeout", "5", "--timeout", "60", "--keep-alive", "30", "--log-level", "warning",
]


@dataclass(frozen=True)
class Stack:
    base_url: str
    project_id: str
    env: dict[str, str]  # the settings the stack's functions run with (Redis's secrets' names included)
    firestore_host: str
    kms_endpoint: str
    kms_key: str
    demo_license_key: str
    pid: int
    state_file: Path
    log_file: Path

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1].split("/", 1)[0])


def state_dir(repo: Path) -> Path:
    """Where ./scripts/dev keeps stack.json and functions.log (DEV_STATE_DIR moves it, as in dev.py)."""
    return Path(os.environ.get("DEV_STATE_DIR") or repo / ".dev")


def load_stack(repo: Path) -> Stack | None:
    """The stack described by <state dir>/stack.json, or None when there is none or its pid is gone."""
    state_file = state_dir(repo) / "stack.json"
    try:
        facts = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return None
    stack = Stack(
        base_url=facts["base_url"].rstrip("/"),
        project_id=facts["project_id"],
        env=facts["env"],
        firestore_host=facts["firestore_emulator_host"],
        kms_endpoint=facts["kms_endpoint"],
        kms_key=facts["lease_root_kms_key"],
        demo_license_key=facts["license_key"],
        pid=int(facts["pid"]),
        state_file=state_file,
        log_file=state_file.parent / "functions.log",
    )
    return stack if Path(f"/proc/{stack.pid}").exists() else None


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:
        return None


def cmdline(pid: int) -> list[str]:
    raw = _read(f"/proc/{pid}/cmdline")
    return [part for part in (raw or "").split("\0") if part]


def _stat_fields(pid: int) -> list[str] | None:
    raw = _read(f"/proc/{pid}/stat")
    if raw is None:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rfind(")") + 2:].split()


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants alive right now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            found.append(pid)
            todo.extend(children.get(pid, []))
    return found


def role_of(pid: int, tree: set[int]) -> str:
    """A short name for a stack process: what it is, not its pid."""
    argv = cmdline(pid)
    text = " ".join(argv)
    if "redis-server" in text:
        return "redis-server"
    if "cloud-firestore-emulator" in text or "emulators firestore" in text:
        return "firestore emulator (Google's: gcloud + java)"
    if "gunicorn" in text:
        fields = _stat_fields(pid)
        parent = int(fields[1]) if fields else 0
        return "gunicorn worker" if parent in tree and "gunicorn" in " ".join(cmdline(parent)) else "gunicorn master"
    if "devstack.dev" in text:
        return "scripts/dev (+ KMS stand-in)"
    return os.path.basename(argv[0]) if argv else f"pid {pid}"


def gunicorn_processes(root: int) -> tuple[int | None, list[int]]:
    """(master pid, worker pids) of the stack's function server."""
    tree = process_tree(root)
    members = set(tree)
    master = next((p for p in tree if role_of(p, members) == "gunicorn master"), None)
    workers = [p for p in tree if role_of(p, members) == "gunicorn worker"]
    return master, sorted(workers)


def gunicorn_flags(master: int | None) -> tuple[str | None, list[str]]:
    """(app, flags without --bind) of the stack's gunicorn master, read from its command line."""
    argv = cmdline(master) if master else []
    if "gunicorn" not in argv:
        return None, list(FALLBACK_GUNICORN_FLAGS)
    rest = argv[argv.index("gunicorn") + 1:]
    # scripts/devstack/stack.py puts the app first, then the flags.
    app = rest[0] if rest and not rest[0].startswith("-") else None
    flags, skip = [], False
    for part in rest[1 if app else 0:]:
        if skip:
            skip = False
        elif part in ("--bind", "-b"):
            skip = True
        elif not part.startswith("--bind="):
            flags.append(part)
    return app, flags


def flag_value(flags: list[str], name: str, default: str) -> str:
    """The value after `name` in a gunicorn command line, or `default` when the flag is absent."""
    if name in flags:
        index = flags.index(name)
        if index + 1 < len(flags):
            return flags[index + 1]
    return default


def rss_bytes(pid: int) -> int:
    raw = _read(f"/proc/{pid}/statm")
    return int(raw.split()[1]) * PAGE_BYTES if raw else 0


def pss_bytes(pid: int) -> int:
    raw = _read(f"/proc/{pid}/smaps_rollup") or ""
    for line in raw.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    if not fields:
        return 0.0
    # utime and stime are fields 14 and 15 of /proc/<pid>/stat (1-based); we dropped 2.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds every core spent busy since boot (all processes, the kernel, and steal)."""
    fields = (_read("/proc/stat") or "cpu 0").splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in (fields + ["0"] * 8)[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def _sum_by_role(root: int, metric) -> dict[str, float]:
    tree = process_tree(root)
    members = set(tree)
    totals: dict[str, float] = {}
    for pid in tree:
        role = role_of(pid, members)
        totals[role] = totals.get(role, 0.0) + metric(pid)
    return totals


def cpu_by_role(root: int) -> dict[str, float]:
    return _sum_by_role(root, cpu_seconds)


def pss_by_role(root: int) -> dict[str, float]:
    return _sum_by_role(root, pss_bytes)


def established_per_worker(workers: list[int], port: int) -> dict[int, int]:
    """Established client connections to 127.0.0.1:`port` held by each gunicorn worker."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in (_read(table) or "").splitlines()[1:]:
            cols = line.split()
            if len(cols) > 9 and cols[3] == "01" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    counts = {}
    for pid in workers:
        n = 0
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    n += 1
        except OSError:
            pass
        counts[pid] = n
    return counts


@dataclass
class MemorySampler:
    """Samples the summed RSS of the stack's process tree on a timer; keeps the peak."""

    root: int
    interval_s: float = 0.25
    peak_bytes: int = 0
    peak_at_phase: str = ""
    peak_by_role: dict[str, int] = field(default_factory=dict)
    phase: str = "idle"
    samples: int = 0
    per_phase_peak: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _tree: list[int] = field(default_factory=list)
    _tree_read: float = 0.0

    def sample(self) -> int:
        now = time.monotonic()
        if now - self._tree_read > 2.0:  # the tree changes rarely (a worker restart); re-walk /proc now and then
            self._tree = process_tree(self.root)
            self._tree_read = now
        members = set(self._tree)
        by_pid = {pid: rss_bytes(pid) for pid in self._tree}
        total = sum(by_pid.values())
        self.samples += 1
        phase = self.phase.removeprefix("after ")  # the moments after a phase count as that phase
        self.per_phase_peak[phase] = max(self.per_phase_peak.get(phase, 0), total)
        if total > self.peak_bytes:
            self.peak_bytes = total
            self.peak_at_phase = self.phase
            roles: dict[str, int] = {}
            for pid, rss in by_pid.items():
                role = role_of(pid, members)
                roles[role] = roles.get(role, 0) + rss
            self.peak_by_role = roles
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def start(self) -> MemorySampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sample()
