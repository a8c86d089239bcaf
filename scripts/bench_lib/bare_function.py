"""The bare reference server: the no-op function under the stack's own gunicorn flags."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from devstack.processes import free_port, spawn, stop, wait_until
from devstack.stack import REPO

NOOP_SOURCE = Path(__file__).with_name("noop_function") / "main.py"


@dataclass
class BareServer:
    process: subprocess.Popen
    base_url: str
    argv: list[str]
    log: IO[bytes]  # gunicorn's own messages; shown only if it fails to start

    def stop(self) -> None:
        stop(self.process, timeout_s=10)
        self.log.close()


def start_bare_server(flags: list[str]) -> BareServer:
    """gunicorn + functions-framework's create_app for the no-op function, on a free loopback port.

    Args:
        flags: the stack's gunicorn flags (workers, threads, worker class, reuse-port, ...), without --bind.
    """
    port = free_port()
    app = f'functions_framework:create_app(target="noop", source="{NOOP_SOURCE}")'
    argv = [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}", *flags]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    log = tempfile.TemporaryFile()  # gunicorn's own messages; shown only if it fails to start
    process = spawn(argv, env=env, stdout=log, stderr=log, cwd=str(REPO))
    base_url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.post(f"{base_url}/", json={}, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, timeout_s=30, what="the bare reference function", process=process)
    except BaseException as exc:
        stop(process)
        log.seek(0)
        tail = log.read()[-2000:].decode(errors="replace")
        log.close()
        raise RuntimeError(f"{exc}; gunicorn said: {tail}") from exc
    return BareServer(process, base_url, argv[1:], log)
