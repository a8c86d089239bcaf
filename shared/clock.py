"""Time as a dependency, so tests can move it (lease expiry is all about time)."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""


class SystemClock:
    """The machine's wall clock (NTP-synchronised on Cloud Run)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told to; thread-safe."""

    def __init__(self, start_ms: int = 1_800_000_000_000):
        self._now_ms = start_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return self._now_ms

    def advance(self, *, seconds: float = 0, ms: int = 0) -> None:
        with self._lock:
            self._now_ms += ms + round(seconds * 1000)

    def set_ms(self, now_ms: int) -> None:
        with self._lock:
            self._now_ms = now_ms
