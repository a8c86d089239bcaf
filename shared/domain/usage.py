"""A license's daily usage counters, and what is read from them.

The seat scripts count per UTC day (the usage hash of shared/seats/lua/_prelude.lua):
    peak        most seats in use at once
    denials     acquires refused for want of a seat (a waiting client counts once)
    overage     most seats in use beyond max_seats at once (the overdraft)
    queued      callers who got their seat through the wait queue
    qwait_<s>   of those, how many waited at most <s> seconds (and more than the bucket
                below); qwait_inf: longer than the last bucket
The sweep makes them durable in Firestore (raised, never lowered); the larger of the two
copies wins when they are read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

WAIT_BUCKETS_S = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
"""Upper bounds of the queue-wait histogram (shared/seats/lua/acquire_seat.lua says the same)."""
COUNTERS = ("peak", "denials", "overage", "queued")
_COUNTER = re.compile(r"(peak|denials|overage|queued|qwait_(?:\d+|inf))")


def is_usage_counter(name: str) -> bool:
    return bool(_COUNTER.fullmatch(name))


def merged(*copies: Mapping[str, int]) -> dict[str, int]:
    """One day's counters from several copies (Redis, Firestore): the larger of each."""
    out: dict[str, int] = {}
    for copy in copies:
        for name, value in copy.items():
            out[name] = max(out.get(name, 0), int(value))
    return out


def wait_percentile(counters: Mapping[str, int], fraction: float) -> int | None:
    """The queue wait (seconds, a bucket's upper bound) that `fraction` of the day's queued
    callers waited at most; None when nobody was queued. Past the last bucket: its bound
    is reported as a lower limit would be misleading, so None is returned for it too."""
    total = sum(v for k, v in counters.items() if k.startswith("qwait_"))
    if total == 0:
        return None
    seen = 0
    for bound in WAIT_BUCKETS_S:
        seen += counters.get(f"qwait_{bound}", 0)
        if seen >= fraction * total:
            return bound
    return None


def day_view(day: str, counters: Mapping[str, int]) -> dict[str, object]:
    """One day as the admin API shows it."""
    view: dict[str, object] = {"date": day, **{name: int(counters.get(name, 0)) for name in COUNTERS}}
    if counters.get("queued"):
        view["queue_wait_p50_s"] = wait_percentile(counters, 0.5)
        view["queue_wait_p95_s"] = wait_percentile(counters, 0.95)
    return view
