"""Time as a dependency, so tests can move it (lease expiry is all about time)."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
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


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def datetime_to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return round(value.timestamp() * 1000)


def rfc3339(ms: int | None) -> str | None:
    """The API's time format: RFC 3339 UTC with millisecond precision, or None."""
    if ms is None:
        return None
    return ms_to_datetime(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> int:
    """Milliseconds for an RFC 3339 time; raises ValueError without an explicit zone."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("time must carry a zone, e.g. 2027-01-01T00:00:00Z")
    return datetime_to_ms(value)
