"""The usage figures of an hour, of a day and of a period (shared/domain/usage.py): pure arithmetic."""

from __future__ import annotations

from shared.domain.times import HOUR_MS
from shared.domain.usage import (
    SeatSpan,
    day_start_ms,
    hour_key,
    hour_start_ms,
    hour_usage,
    idle,
    level_at,
    roll_up,
    series_row,
    summary,
)

H0 = day_start_ms("2027-03-14")  # a US DST change day: usage hours are UTC whatever the zone
S = 1000


def span(sid, uid, start_s, end_s, reason=None, ci=False):
    return SeatSpan(sid, uid, H0 + start_s * S, H0 + end_s * S, reason, ci)


def test_hour_names_are_utc_and_round_trip():
    assert hour_key(H0) == "2027-03-14T00"
    assert hour_key(H0 + HOUR_MS - 1) == "2027-03-14T00"
    assert hour_key(H0 + 7 * HOUR_MS) == "2027-03-14T07"
    assert hour_start_ms("2027-03-14T07") == H0 + 7 * HOUR_MS
    # every day has 24 hours: no local time anywhere
    assert len({hour_key(H0 + h * HOUR_MS) for h in range(24)}) == 24


def test_a_session_spanning_three_hours_is_split_at_the_hour_boundaries():
    spans = [span("s1", "ann", 1800, 3 * 3600 - 600, reason="released")]
    hours = [hour_usage(spans, {}, start_ms=H0 + h * HOUR_MS, end_ms=H0 + (h + 1) * HOUR_MS, max_seats=2)
             for h in range(3)]
    assert [h["seat_seconds"] for h in hours] == [1800, 3600, 3000]
    assert [h["grants"] for h in hours] == [1, 0, 0]
    assert [h["releases"] for h in hours] == [0, 0, 1]
    assert [h["peak"] for h in hours] == [1, 1, 1]
    assert [h["users"]["ann"]["n"] for h in hours] == [1, 0, 0]  # one session, begun in the first hour
    assert sum(h["seat_seconds"] for h in hours) == 3 * 3600 - 600 - 1800
    day = roll_up(hours)
    assert day["seat_seconds"] == 3 * 3600 - 2400 and day["users"]["ann"]["s"] == 3 * 3600 - 2400


def test_levels_peak_and_time_at_full_use():
    spans = [span("a", "ann", 0, 1800), span("b", "bob", 600, 2400), span("c", "cy", 1200, 1500)]
    figures = hour_usage(spans, {}, start_ms=H0, end_ms=H0 + HOUR_MS, max_seats=3)
    # 0-600: 1; 600-1200: 2; 1200-1500: 3; 1500-1800: 2; 1800-2400: 1; 2400-3600: 0
    assert figures["levels"] == {"0": 1200, "1": 1200, "2": 900, "3": 300}
    assert figures["peak"] == 3 and figures["at_full_s"] == 300 and figures["hours_at_full"] == 1
    assert figures["seat_seconds"] == 1800 + 1800 + 300
    assert sum(figures["levels"].values()) == 3600


def test_a_boundary_instant_belongs_to_the_hour_it_starts():
    ends_at_boundary = span("a", "ann", 0, 3600, reason="expired")
    first = hour_usage([ends_at_boundary], {}, start_ms=H0, end_ms=H0 + HOUR_MS, max_seats=1)
    second = hour_usage([ends_at_boundary], {}, start_ms=H0 + HOUR_MS, end_ms=H0 + 2 * HOUR_MS, max_seats=1)
    assert first["seat_seconds"] == 3600 and first["expiries"] == 0  # it ended at 01:00, in the next hour
    assert second["seat_seconds"] == 0 and second["expiries"] == 1 and second["peak"] == 0


def test_never_held_sessions_and_the_ci_pool_are_apart():
    spans = [span("a", "ann", 0, 0, reason="not_held"), span("k", "key:ci", 0, 1800, ci=True),
             span("b", "bob", 0, 3600)]
    figures = hour_usage(spans, {}, start_ms=H0, end_ms=H0 + HOUR_MS, max_seats=1)
    assert figures["peak"] == 1 and figures["seat_seconds"] == 3600  # the machine's pool seat is not a seat
    assert figures["ci_peak"] == 1 and figures["ci_seat_seconds"] == 1800
    assert "ann" not in figures["users"] and set(figures["users"]) == {"bob", "key:ci"}


def test_counters_become_denials_by_reason_and_demand():
    spans = [span("a", "ann", 0, 3600)]
    counters = {"denials:no_seat": 5, "denials:policy": 2, "denied_callers": 3, "queued": 2, "qwait_5": 1,
                "qwait_60": 1, "overage": 1}
    figures = hour_usage(spans, counters, start_ms=H0, end_ms=H0 + HOUR_MS, max_seats=1)
    assert figures["denials"] == {"no_seat": 5, "policy": 2}
    # the hour spent all its time at full use: three callers wanted a seat beside the one in use
    assert figures["demand"] == {"4": 3600}
    row = series_row(H0, figures, final=True)
    assert row["denials"] == 7 and row["denials_no_seat"] == 5 and row["denials_suspended"] == 0
    assert row["queue_wait_p50_s"] == 5 and row["queue_wait_p95_s"] == 60 and row["start"] == "2027-03-14T00:00:00.000Z"


def test_summary_and_right_sizing_over_a_period():
    busy = hour_usage([span("a", "ann", 0, 3600), span("b", "bob", 0, 3600)], {"denied_callers": 1},
                      start_ms=H0, end_ms=H0 + HOUR_MS, max_seats=2)
    quiet = hour_usage([span("c", "cy", 3600, 3600 + 1800)], {}, start_ms=H0 + HOUR_MS,
                       end_ms=H0 + 2 * HOUR_MS, max_seats=2)
    period = roll_up([busy, quiet, *[idle(3600, 2)] * 98])  # 100 hours
    figures = summary(period)
    assert figures["peak"] == 2 and figures["hours_at_full"] == 1
    assert figures["seat_hours"] == 2.5 and figures["average"] == round(2.5 / 100, 3)
    assert figures["p95"] == 0  # 98.5% of the time nobody held a seat
    # demand: 98.5 h at 0 seats, 0.5 h at 1, and the busy hour at 3 (two held, one refused)
    assert figures["right_size"]["seats"] == 1
    assert level_at(period["demand"], 0.999) == 3
    assert figures["right_size"]["method"].startswith("the smallest number of seats")


def test_rolling_up_is_the_same_figures_in_any_grouping():
    hours = [hour_usage([span(f"s{h}", f"u{h % 3}", h * 3600 + 100, h * 3600 + 2000)], {"denials:no_seat": h},
                        start_ms=H0 + h * HOUR_MS, end_ms=H0 + (h + 1) * HOUR_MS, max_seats=1) for h in range(6)]
    once = roll_up(hours)
    twice = roll_up([roll_up(hours[:2]), roll_up(hours[2:])])
    assert once == twice


def test_a_big_licenses_histogram_is_bucketed_upward_and_its_day_keeps_5000_users_by_name():
    from shared.domain.usage import OTHERS, capped_users, compacted

    levels = {str(level): 10 for level in range(1000)}  # a thousand levels, ten seconds each
    small = compacted(levels)
    assert len(small) <= 256 and sum(small.values()) == sum(levels.values())
    assert level_at(small, 0.95) >= level_at(levels, 0.95)  # a percentile never understated
    assert level_at(small, 0.95) - level_at(levels, 0.95) < 4  # by less than a bucket (width 4 here)
    assert compacted({"0": 5, "3": 1}) == {"0": 5, "3": 1}

    users = {f"u{i:05d}": {"s": i, "n": 1, "p": 1, "l": i} for i in range(5003)}
    kept = capped_users(users)
    assert len(kept) == 5000 and "u05002" in kept and "u00000" not in kept
    assert kept[OTHERS] == {"s": 0 + 1 + 2 + 3, "n": 4, "p": 1, "l": 3, "u": 4}
    assert capped_users({**kept, "new": {"s": 10**9, "n": 1, "p": 1, "l": 9}})[OTHERS]["u"] == 5
