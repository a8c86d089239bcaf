"""Helpers of the client SDK tests (imported by name: tests/client is on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import httpx


def seats_used(base_url: str, key: str, token: str) -> int:
    answer = httpx.post(f"{base_url}/validate", json={"license_key": key},
                        headers={"Authorization": f"Bearer {token}"}, timeout=10)
    answer.raise_for_status()
    return answer.json()["seats"]["used"]


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, step_s: float = 0.05) -> float:
    """Poll until `condition()`; the seconds it took. Fails the test on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def run_cli(*args: str, env: dict | None = None, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    """`coditect-license ...` as installed in .venv (the console script)."""
    script = Path(sys.executable).parent / "coditect-license"
    return subprocess.run([str(script), *args], env={**os.environ, **(env or {})}, input=input,
                          capture_output=True, text=True, timeout=timeout)


def python_child(code: str, *, env: dict | None = None) -> subprocess.Popen:
    """A child Python process (the venv's interpreter, so it imports the installed SDK)."""
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
