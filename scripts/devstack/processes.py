"""Child processes that never outlive the stack that started them."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# The leader of a child's own session (spawn(..., own_session=True)). A parent-death
# signal reaches only the process setpriv starts, and a tree such as gcloud -> shell ->
# java does not pass a SIGTERM down (gcloud exits and leaves java running; it also puts
# itself in a process group of its own). So the leader is this shell: it turns the
# SIGTERM it gets into one for its child's group and its own, i.e. the whole tree. The
# trap is set before the child starts, so no early signal finds it missing.
_SESSION_LEADER = ('trap \'trap - TERM HUP; kill -TERM -"$child" 2>/dev/null; kill -TERM 0\' TERM HUP; '
                   '"$@" & child=$!; wait "$child"')


class PortInUse(RuntimeError):
    """Something already listens on the TCP port a server of the stack was asked to bind."""


def spawn(argv: Sequence[str], *, env: dict[str, str] | None = None, stdout=None, stderr=None,
          stdin=subprocess.DEVNULL, cwd: str | None = None, own_session: bool = False) -> subprocess.Popen:
    """Start a child that the kernel stops (SIGTERM) when this process dies, even by SIGKILL.

    The parent-death signal is set by util-linux `setpriv` rather than a Python
    preexec_fn: preexec_fn forces a plain fork() that runs gRPC's fork handlers in the
    child, which aborts while this process holds live gRPC channels or servers.

    Args:
        own_session: run the child, a tree of processes, in a session of its own, led
            by a shell that passes the parent-death SIGTERM on to the whole tree; stop
            it with `stop_session`. Its own session also keeps a terminal's Ctrl-C away
            from it: the parent stops it, in the parent's order.
    """
    setpriv = shutil.which("setpriv")
    prefix = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
    if own_session:
        prefix += ["/bin/sh", "-c", _SESSION_LEADER, "sh"]
    return subprocess.Popen(prefix + list(argv), env=env, stdout=stdout, stderr=stderr, stdin=stdin, cwd=cwd,
                            start_new_session=own_session)


def stop(process: subprocess.Popen | None, *, timeout_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it lingers; always reaps."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def session_members(sid: int) -> dict[int, int]:
    """{pid: parent pid} of the live (not zombie) processes of a session, from /proc."""
    members = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid, _group, session = stat.read_text().rsplit(")", 1)[1].split()[:4]
        except (OSError, ValueError):
            continue
        if int(session) == sid and state != "Z":
            members[int(stat.parent.name)] = int(ppid)
    return members


def stop_session(process: subprocess.Popen | None, *, timeout_s: float = 10.0) -> None:
    """Stop a child started with `spawn(own_session=True)` and every process of its session.

    SIGTERM goes first to the leaves of the tree only (for the emulator: java), so each
    parent sees its child end, reaps it and ends in turn: everything is gone, and reaped,
    when this returns. Signalled all at once, orphans would linger as zombies until init
    reaps them. After half the time whatever is left gets SIGTERM, at the end SIGKILL.
    Always reaps the leader.
    """
    if process is None:
        return
    sid = process.pid  # the leader of its own session

    def signal_members(signum: int, *, leaves_only: bool) -> None:
        members = session_members(sid)
        parents = set(members.values())
        for pid in members:
            if not leaves_only or pid not in parents:
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass

    signal_members(signal.SIGTERM, leaves_only=True)
    started = time.monotonic()
    escalated = False
    while True:
        process.poll()  # reap the leader, or it stays a member (a zombie, but found until reaped)
        if not session_members(sid):
            break
        waited = time.monotonic() - started
        if waited >= timeout_s:
            signal_members(signal.SIGKILL, leaves_only=False)
            break
        if waited >= timeout_s / 2 and not escalated:
            signal_members(signal.SIGTERM, leaves_only=False)
            escalated = True
        time.sleep(0.05)
    process.wait()


def refuse_busy_port(port: int, *, host: str = "127.0.0.1", what: str = "the server") -> None:
    """Raise PortInUse if something listens on host:port.

    SO_REUSEADDR as the servers themselves bind: a port left in TIME_WAIT by a stack
    that just stopped is free, one a live server listens on is not.
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUse(f"port {port} on {host} is already in use (another ./scripts/dev?): "
                            f"{what} cannot bind it; stop that or pick another port") from None


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (callers retry if it is taken meanwhile)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(ready: Callable[[], bool], *, timeout_s: float, what: str,
               process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before it was ready")
        try:
            if ready():
                return
        except Exception:  # noqa: BLE001 - a server that is still booting fails in many ways
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{what} was not ready within {timeout_s} s")


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def env_without(keys: Sequence[str]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in keys}
