"""The API's time format. Times inside the service are integer epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@overload
def ms_to_datetime(ms: int) -> datetime: ...


@overload
def ms_to_datetime(ms: None) -> None: ...


def ms_to_datetime(ms: int | None) -> datetime | None:
    """A UTC datetime (what Firestore stores), or None."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def datetime_to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1000)


@overload
def rfc3339(ms: int) -> str: ...


@overload
def rfc3339(ms: None) -> None: ...


def rfc3339(ms: int | None) -> str | None:
    """RFC 3339 UTC with millisecond precision, or None."""
    if ms is None:
        return None
    return ms_to_datetime(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_day(ms: int) -> str:
    """The UTC day of an instant, YYYY-MM-DD (how usage is counted)."""
    return ms_to_datetime(ms).strftime("%Y-%m-%d")


def parse_rfc3339(text: str) -> int:
    """Milliseconds for an RFC 3339 time; raises ValueError without an explicit zone."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("time must carry a zone, e.g. 2027-01-01T00:00:00Z")
    return datetime_to_ms(value)
