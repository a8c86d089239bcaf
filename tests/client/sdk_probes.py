"""What the client tests observe from outside the SDK: a condition coming true, the seats in use.

Imported by name: tests/client is on sys.path.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx


def seats_used(base_url: str, key: str, token: str) -> int:
    """The seats of `key` in use, as the server's validate answers."""
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
