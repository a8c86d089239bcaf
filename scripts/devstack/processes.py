"""Child processes that never outlive the stack that started them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence


def spawn(argv: Sequence[str], *, env: dict[str, str] | None = None, stdout=None, stderr=None,
          stdin=subprocess.DEVNULL, cwd: str | None = None) -> subprocess.Popen:
    """Start a child that the kernel stops (SIGTERM) when this process dies, even by SIGKILL.

    The parent-death signal is set by util-linux `setpriv` rather than a Python
    preexec_fn: preexec_fn forces a plain fork() that runs gRPC's fork handlers in the
    child, which aborts while this process holds live gRPC channels or servers.
    """
    setpriv = shutil.which("setpriv")
    prefix = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
    return subprocess.Popen(prefix + list(argv), env=env, stdout=stdout, stderr=stderr, stdin=stdin, cwd=cwd)


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
