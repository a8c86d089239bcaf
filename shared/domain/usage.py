"""Usage history: what one UTC hour of a license's seats looked like, and how hours add up.

An hour's figures come from two sources (README "Usage reports" states the definitions):
    seat spans   the durable session records: who held a seat from when to when. Peak,
                 seat-seconds, the time spent at each level of concurrent use, grants
                 and ends, and each user's share are computed from them, so a Redis loss
                 changes none of these.
    counters     what only the seat scripts see, counted per hour in Redis (the usage
                 hash of shared/seats/lua/_prelude.lua) and made durable by every sweep
                 (a checkpoint): refusals by reason, distinct callers refused for want of
                 a seat, queue waits, the overdraft's peak.
The sweep closes an hour once it is over (shared/licensing/usage_history.py); a report
reads closed hours from Firestore and computes the open ones the same way, live.

Everything here is plain arithmetic on integers (milliseconds in, seconds out) so that
an hour computed twice is the same hour: the sweep's writes are idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.domain.times import DAY_MS, HOUR_MS, rfc3339

DENIAL_REASONS = ("no_seat", "group_limit", "user_limit", "policy", "suspended", "expired", "ci_pool")
"""Why an acquire was refused (the counters `denials:<reason>`):
    no_seat      every seat the caller could take was in use (a queued caller counts once)
    group_limit  the caller's group held its maximum
    user_limit   the user held the license's maximum of sessions per user
    policy       the seat policy's exclude or include, or the license's e-mail domains
    suspended    the license was suspended
    expired      the license had expired
    ci_pool      a machine key found the CI pool full"""
WAIT_BUCKETS_S = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
"""Upper bounds of the queue-wait histogram (shared/seats/lua/acquire_seat.lua says the same)."""
PEAK_COUNTERS = frozenset({"overage"})
"""Counters that hold a maximum; every other counter is a sum."""
_ENDS = {"released": "releases", "returned": "releases", "expired": "expiries", "unrecorded": "expiries",
         "forced": "forced", "revoked": "forced", "evicted_on_recovery": "forced"}
"""End reasons (shared/domain/sessions.py EndReason) as the report groups them. `not_held`
is none of them: such a session never held a seat and is left out of usage altogether."""


def is_counter(name: str) -> bool:
    """A counter of the usage hash (after its "<hour>:" prefix)."""
    if name in ("denied_callers", "queued", "overage"):
        return True
    kind, _, detail = name.partition(":")
    if kind == "denials":
        return detail in DENIAL_REASONS
    return name.startswith("qwait_") and name[6:] in {*map(str, WAIT_BUCKETS_S), "inf"}


# -- hours and days as names ---------------------------------------------------------------
def day_doc_id(license_id: str, day: str) -> str:
    """The id of a license's usage document of a UTC day (shared/store/usage_store.py)."""
    return f"{license_id}_{day}"


def hour_key(ms: int) -> str:
    """The UTC hour an instant falls in, "YYYY-MM-DDTHH" (how counters and hours are named)."""
    return datetime.fromtimestamp(ms // HOUR_MS * 3600, tz=UTC).strftime("%Y-%m-%dT%H")


def hour_start_ms(key: str) -> int:
    return int(datetime.strptime(key, "%Y-%m-%dT%H").replace(tzinfo=UTC).timestamp()) * 1000


def day_of_hour(key: str) -> str:
    return key[:10]


def day_start_ms(day: str) -> int:
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()) * 1000


def floor_hour(ms: int) -> int:
    return ms // HOUR_MS * HOUR_MS


def floor_day(ms: int) -> int:
    return ms // DAY_MS * DAY_MS


# -- one hour ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeatSpan:
    """A session's time holding a seat, as far as it is known: `end_ms` is its end, or for a
    session still live the instant up to which it is counted; `end_reason` None then."""

    session_id: str
    uid: str
    start_ms: int
    end_ms: int
    end_reason: str | None = None
    ci: bool = False


def _seconds(ms: int) -> int:
    return (ms + 500) // 1000


def _levels(spans: list[SeatSpan], start_ms: int, end_ms: int) -> tuple[dict[int, int], int]:
    """Milliseconds spent at each count of concurrent spans in [start, end), and the highest
    count reached (even for an instant)."""
    edges: dict[int, int] = {}
    for span in spans:
        lo, hi = max(span.start_ms, start_ms), min(span.end_ms, end_ms)
        if lo < hi:
            edges[lo] = edges.get(lo, 0) + 1
            edges[hi] = edges.get(hi, 0) - 1
    levels: dict[int, int] = {}
    level, peak, at = 0, 0, start_ms
    for instant in sorted(edges):
        if instant > at:
            levels[level] = levels.get(level, 0) + instant - at
        level += edges[instant]
        peak, at = max(peak, level), instant
    if end_ms > at:
        levels[level] = levels.get(level, 0) + end_ms - at
    return levels, peak


def _in_seconds(levels_ms: Mapping[int, int], total_s: int) -> dict[str, int]:
    """A histogram in whole seconds that adds up to exactly `total_s` (rounding goes to level 0)."""
    out = {str(level): _seconds(ms) for level, ms in sorted(levels_ms.items()) if ms > 0}
    out["0"] = out.get("0", 0) + total_s - sum(out.values())
    return {level: seconds for level, seconds in out.items() if seconds > 0}


HISTOGRAM_LEVELS = 256
"""Most levels a stored histogram keeps. A license of thousands of seats visits thousands of
levels in a busy hour; beyond this, levels are merged into buckets of a power-of-two width,
each named by its highest level, so a percentile read from it is never below the truth (a
right-sizing never understates) and a day's document stays far from Firestore's 1 MiB."""
USERS_PER_DAY = 5000
"""Most users a day's document lists by name; the least-used beyond are folded into one
entry, OTHERS (README, "Usage reports"), for the same reason."""
OTHERS = ""
"""The folded users' entry (no Firebase uid is empty); its `u` counts them."""


def compacted(histogram: Mapping[str, int], limit: int = HISTOGRAM_LEVELS) -> dict[str, int]:
    """The histogram with at most `limit` levels (see HISTOGRAM_LEVELS); as it is if it fits."""
    if len(histogram) <= limit:
        return dict(histogram)
    width = 2
    while len({-(-int(level) // width) for level in histogram}) > limit:
        width *= 2
    out: dict[str, int] = {}
    for level, seconds in histogram.items():
        bucket = str(-(-int(level) // width) * width)
        out[bucket] = out.get(bucket, 0) + seconds
    return out


def capped_users(users: dict[str, dict[str, int]], limit: int = USERS_PER_DAY) -> dict[str, dict[str, int]]:
    """At most `limit` entries: the most-used users by name, the rest folded into OTHERS
    (seat time and sessions added, peak and last seen the highest, `u` how many)."""
    if len(users) <= limit:
        return users
    named = sorted((uid for uid in users if uid != OTHERS), key=lambda uid: (-users[uid]["s"], uid))
    keep, fold = named[: limit - 1], named[limit - 1 :]
    others = dict(users.get(OTHERS) or {"s": 0, "n": 0, "p": 0, "l": 0, "u": 0})
    for uid in fold:
        use = users[uid]
        others.update(s=others["s"] + use["s"], n=others["n"] + use["n"], p=max(others["p"], use["p"]),
                      l=max(others["l"], use["l"]), u=others.get("u", 0) + 1)
    return {**{uid: users[uid] for uid in keep}, OTHERS: others}


def _shifted(levels: Mapping[str, int], at_or_above: int, by: int) -> dict[str, int]:
    """The histogram with the time spent at `at_or_above` or more moved up by `by` levels."""
    out: dict[str, int] = {}
    for level, seconds in levels.items():
        target = int(level) + by if by and int(level) >= at_or_above else int(level)
        out[str(target)] = out.get(str(target), 0) + seconds
    return out


def hour_usage(spans: Iterable[SeatSpan], counters: Mapping[str, int], *, start_ms: int, end_ms: int,
               max_seats: int) -> dict[str, Any]:
    """The figures of [start, end) (an hour, or the part of the open hour gone by).

    `spans` may include spans outside the window (they are clipped); `counters` are the
    window's counters (names as in DENIAL_REASONS, WAIT_BUCKETS_S). The result is a plain
    JSON-able dict (stored as is, inside the day's document):
        levels   {"<seats in use>": seconds at that many}  (seats of max_seats: the CI pool
                 is apart), adding up to the window
        demand   levels, with the time at full use moved up by the distinct callers refused
                 for want of a seat in the window (the right-sizing input)
        users    {uid: {"s": seat-seconds, "n": sessions begun, "p": most at once, "l": last
                 seen (ms)}}
    """
    seats: list[SeatSpan] = []
    pool: list[SeatSpan] = []
    for span in spans:
        # (a span that ended at the window's first instant is kept: its end is of this window)
        if span.end_reason == "not_held" or span.end_ms < start_ms or span.start_ms >= end_ms:
            continue
        (pool if span.ci else seats).append(span)
    total_s = _seconds(end_ms - start_ms)
    levels_ms, peak = _levels(seats, start_ms, end_ms)
    levels = _in_seconds(levels_ms, total_s)
    at_full_s = sum(seconds for level, seconds in levels.items() if max_seats and int(level) >= max_seats)
    denied_callers = int(counters.get("denied_callers", 0))
    ends = dict.fromkeys(("releases", "expiries", "forced"), 0)
    for span in seats + pool:
        if span.end_reason in _ENDS and start_ms <= span.end_ms < end_ms:
            ends[_ENDS[span.end_reason]] += 1
    users: dict[str, dict[str, int]] = {}
    used = [span for span in seats + pool if span.end_ms > start_ms]
    for uid in sorted({span.uid for span in used}):
        own = [span for span in used if span.uid == uid]
        _, own_peak = _levels(own, start_ms, end_ms)
        users[uid] = {
            "s": _seconds(sum(min(s.end_ms, end_ms) - max(s.start_ms, start_ms) for s in own)),
            "n": sum(1 for s in own if start_ms <= s.start_ms < end_ms),
            "p": own_peak,
            "l": max(min(s.end_ms, end_ms) for s in own),
        }
    _, ci_peak = _levels(pool, start_ms, end_ms)
    figures: dict[str, Any] = {
        "seconds": total_s,
        "max_seats": max_seats,
        "peak": peak,
        "seat_seconds": _seconds(sum(ms * level for level, ms in levels_ms.items())),
        "at_full_s": at_full_s,
        "hours_at_full": 1 if at_full_s else 0,
        "grants": sum(1 for span in seats if start_ms <= span.start_ms < end_ms),
        **ends,
        "denials": {reason: int(counters.get(f"denials:{reason}", 0)) for reason in DENIAL_REASONS
                    if counters.get(f"denials:{reason}")},
        "denied_callers": denied_callers,
        "queued": int(counters.get("queued", 0)),
        "qwait": {name[6:]: int(value) for name, value in counters.items() if name.startswith("qwait_") and value},
        "overage": int(counters.get("overage", 0)),
        "ci_peak": ci_peak,
        "ci_seat_seconds": _seconds(sum(min(s.end_ms, end_ms) - max(s.start_ms, start_ms) for s in pool)),
        "levels": compacted(levels),
        "demand": compacted(_shifted(levels, max_seats, denied_callers if at_full_s else 0)),
        "users": users,
    }
    return figures


# -- hours into days, days into periods ------------------------------------------------------
_SUMS = ("seconds", "seat_seconds", "at_full_s", "hours_at_full", "grants", "releases", "expiries", "forced",
         "denied_callers", "queued", "ci_seat_seconds")
_MAXES = ("peak", "overage", "ci_peak")


def _add_maps(target: dict[str, int], more: Mapping[str, int]) -> None:
    for name, value in more.items():
        target[name] = target.get(name, 0) + int(value)


def roll_up(points: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Several windows' figures as one (a day of hours, a report's period of days): sums add,
    peaks take the highest, histograms add, `max_seats` is the last window's, and users
    merge (seat-seconds and sessions add, peak and last seen take the highest)."""
    out: dict[str, Any] = {name: 0 for name in (*_SUMS, *_MAXES)}
    out.update(max_seats=0, denials={}, qwait={}, levels={}, demand={}, users={})
    for point in points:
        for name in _SUMS:
            out[name] += int(point.get(name, 0))
        for name in _MAXES:
            out[name] = max(out[name], int(point.get(name, 0)))
        out["max_seats"] = int(point.get("max_seats", out["max_seats"]))
        for name in ("denials", "qwait", "levels", "demand"):
            _add_maps(out[name], point.get(name) or {})
        merge_users(out["users"], point.get("users") or {})
    out["levels"], out["demand"] = compacted(out["levels"]), compacted(out["demand"])
    return out


def merge_users(target: dict[str, dict[str, int]], more: Mapping[str, Mapping[str, int]]) -> None:
    for uid, use in more.items():
        mine = target.setdefault(uid, {"s": 0, "n": 0, "p": 0, "l": 0})
        mine["s"] += int(use.get("s", 0))
        mine["n"] += int(use.get("n", 0))
        mine["p"] = max(mine["p"], int(use.get("p", 0)))
        mine["l"] = max(mine["l"], int(use.get("l", 0)))
        if "u" in use:  # the folded users' entry
            mine["u"] = mine.get("u", 0) + int(use["u"])


def idle(seconds: int, max_seats: int) -> dict[str, Any]:
    """The figures of a window in which nothing happened (no document is kept for one)."""
    return hour_usage((), {}, start_ms=0, end_ms=seconds * 1000, max_seats=max_seats)


# -- reading a histogram -----------------------------------------------------------------------
def level_at(histogram: Mapping[str, int], fraction: float) -> int:
    """The smallest level L such that at least `fraction` of the histogram's time was spent
    at L or below (0 for an empty one)."""
    total = sum(histogram.values())
    if total <= 0:
        return 0
    seen = 0
    for level in sorted(int(k) for k in histogram):
        seen += histogram[str(level)]
        if seen >= fraction * total:
            return level
    return max(int(k) for k in histogram)


def wait_percentile(qwait: Mapping[str, int], fraction: float) -> int | None:
    """The queue wait (seconds, a bucket's upper bound) that `fraction` of the queued callers
    waited at most; None when nobody was queued, or when that many waited past the last
    bucket (its bound would understate it)."""
    total = sum(qwait.values())
    if total == 0:
        return None
    seen = 0
    for bound in WAIT_BUCKETS_S:
        seen += qwait.get(str(bound), 0)
        if seen >= fraction * total:
            return bound
    return None


RIGHT_SIZE_COVERAGE = 0.99
RIGHT_SIZE_METHOD = (
    "the smallest number of seats that covers 99% of the period's time-weighted demand, where demand at each "
    "instant is the seats in use, plus, for the time an hour spent with every seat in use, the distinct callers "
    "refused a seat for want of one in that hour"
)


def summary(period: Mapping[str, Any]) -> dict[str, Any]:
    """The headline figures of a rolled-up period (roll_up of every window in it, idle ones
    included, so that `seconds` is the whole period)."""
    seconds = int(period["seconds"]) or 1
    average = period["seat_seconds"] / seconds
    max_seats = int(period["max_seats"])
    return {
        "peak": int(period["peak"]),
        "p95": level_at(period["levels"], 0.95),
        "average": round(average, 3),
        "utilization": round(average / max_seats, 4) if max_seats else None,
        "seat_hours": round(period["seat_seconds"] / 3600, 3),
        "hours_at_full": int(period["hours_at_full"]),
        "denials": sum(period["denials"].values()),
        "denied_callers": int(period["denied_callers"]),
        "overage_peak": int(period["overage"]),
        "grants": int(period["grants"]),
        "right_size": {"seats": level_at(period["demand"], RIGHT_SIZE_COVERAGE), "coverage": RIGHT_SIZE_COVERAGE,
                       "method": RIGHT_SIZE_METHOD},
    }


def series_row(start_ms: int, point: Mapping[str, Any], *, final: bool) -> dict[str, Any]:
    """One point of a report's series: flat (so a CSV has one column per figure), times in
    RFC 3339, every denial reason its own column."""
    seconds = int(point["seconds"]) or 1
    denials = point.get("denials") or {}
    qwait = point.get("qwait") or {}
    return {
        "start": rfc3339(start_ms),
        "final": final,
        "max_seats": int(point["max_seats"]),
        "peak": int(point["peak"]),
        "average": round(point["seat_seconds"] / seconds, 3),
        "seat_seconds": int(point["seat_seconds"]),
        "at_full_s": int(point["at_full_s"]),
        "grants": int(point["grants"]),
        "releases": int(point["releases"]),
        "expiries": int(point["expiries"]),
        "forced": int(point["forced"]),
        "denials": sum(int(v) for v in denials.values()),
        **{f"denials_{reason}": int(denials.get(reason, 0)) for reason in DENIAL_REASONS},
        "denied_callers": int(point["denied_callers"]),
        "queued": int(point["queued"]),
        "queue_wait_p50_s": wait_percentile(qwait, 0.5),
        "queue_wait_p95_s": wait_percentile(qwait, 0.95),
        "overage": int(point["overage"]),
        "ci_peak": int(point["ci_peak"]),
        "ci_seat_seconds": int(point["ci_seat_seconds"]),
    }
