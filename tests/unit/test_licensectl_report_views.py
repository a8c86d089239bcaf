"""licensectl report, report-users and tenant-report: their views of canned answers, and their command lines.

No server: the views get answers shaped as the admin API's contract (GET licenses/{id}/report,
licenses/{id}/report/users, report), and the commands run against a stand-in AdminClient.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cli import admin_api, admin_commands, admin_views
from cli.admin_views import SPARK, clip, inert, spark, text_width
from cli.errors import CliError, UsageError
from cli.licensectl import _parser, main


def _row(start: str, *, final: bool = True, peak: int = 0, average: float = 0.0, seat_seconds: int = 0,
         denials: int = 0, at_full_s: int = 0, max_seats: int = 10) -> dict[str, Any]:
    return {"start": start, "final": final, "max_seats": max_seats, "peak": peak, "average": average,
            "seat_seconds": seat_seconds, "at_full_s": at_full_s, "grants": 12, "releases": 10, "expiries": 1,
            "forced": 0, "denials": denials, "denials_no_seat": denials, "denials_group_limit": 0,
            "denials_user_limit": 0, "denials_policy": 0, "denials_suspended": 0, "denials_expired": 0,
            "denials_ci_pool": 0, "denied_callers": min(denials, 2), "queued": 0, "queue_wait_p50_s": None,
            "queue_wait_p95_s": None, "overage": 0, "ci_peak": 0, "ci_seat_seconds": 0}


def _report(series: list[dict[str, Any]], *, granularity: str = "day", overage_peak: int = 0,
            max_seats: int = 10) -> dict[str, Any]:
    return {"license": "lic_7Hq2", "tenant": "acme", "granularity": granularity,
            "from": "2026-11-01T00:00:00Z", "to": "2026-11-04T00:00:00Z", "through": "2026-11-03T09:00:00Z",
            "max_seats": max_seats, "series": series,
            "summary": {"peak": 10, "p95": 6, "average": 3.1, "utilization": 0.31, "seat_hours": 2230.5,
                        "hours_at_full": 4, "denials": 17, "denied_callers": 5, "overage_peak": overage_peak,
                        "grants": 300,
                        "right_size": {"seats": 8, "coverage": 0.99,
                                       "method": "the 99th percentile of the seats in use, minute by minute"}}}


DAYS = [_row("2026-11-01T00:00:00Z", peak=0),
        _row("2026-11-02T00:00:00Z", peak=5, average=3.25, seat_seconds=280800, denials=3),
        _row("2026-11-03T00:00:00Z", final=False, peak=10, average=6.5, seat_seconds=90000, denials=14,
             at_full_s=14700)]


def test_report_reads_header_summary_table_and_sparkline():
    text = admin_views.report(_report(DAYS))
    print(text)
    lines = text.splitlines()
    assert lines[0] == ("license lic_7Hq2 of tenant acme: 2026-11-01T00:00:00Z until 2026-11-04T00:00:00Z by day; "
                        "10 seats")
    summary = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in lines[2:lines.index("", 2)] if line[:1] != " ")
    assert summary["peak"] == "10 of 10 seats (p95 6)"
    assert summary["average"] == "3.10 seats in use, 31% utilization"
    assert summary["seat-hours"] == "2230.5"
    assert summary["at 100%"] == "4 h with every seat in use"
    assert summary["denials"] == "17 (5 distinct callers)"
    assert summary["right size"] == "8 seats would have covered 99% of the demand"
    assert "(the 99th percentile of the seats in use, minute by minute)" in text
    assert "overage" not in text  # none: no line for it

    head = lines.index(next(line for line in lines if line.startswith("START")))
    assert lines[head].split() == ["START", "PEAK", "AVERAGE", "SEAT-HOURS", "DENIALS", "AT", "100%"]
    assert lines[head + 1].split() == ["2026-11-01", "0", "0.00", "0.0", "0", "0"]
    assert lines[head + 2].split() == ["2026-11-02", "5", "3.25", "78.0", "3", "0"]
    assert lines[head + 3].split() == ["2026-11-03*", "10", "6.50", "25.0", "14", "4h05m"]
    assert lines[head + 4] == "* live: figures through 2026-11-03T09:00:00Z; they change until the period is over"
    # numbers are right-aligned under their headings
    assert {len(line) for line in lines[head:head + 4]} == {len(lines[head])}

    assert lines[-2] == "daily peaks (▁ none, █ 10 seats):"
    assert lines[-1] == "2026-11-01 ▁▅█ 2026-11-03"


def test_report_without_live_rows_has_no_footnote_and_shows_an_overage():
    text = admin_views.report(_report([{**r, "final": True} for r in DAYS], overage_peak=2))
    assert "*" not in text and "live" not in text
    assert "overage peak  2 seats beyond max_seats (overdraft)" in text


def test_report_of_an_empty_period_and_without_a_right_size():
    answer = _report([])
    answer["summary"]["right_size"] = None
    text = admin_views.report(answer)
    assert text.endswith("(no figures in this period)")
    assert "\nright size  not enough figures to tell\n" in text
    assert "daily peaks" not in text


def test_spark_scale_is_round_half_up_of_seven_eighths_with_one_block_for_any_use():
    # level = round-half-up(7 * peak / top), at least 1 when peak > 0; 0 only for no seat in use
    assert "".join(spark(p, 10) for p in (0, 5, 10)) == "▁▅█"
    assert [SPARK.index(spark(p, 14)) for p in range(15)] == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]
    assert spark(1, 100) == "▂"  # one seat in use never reads as none
    assert spark(0, 0) == spark(3, 0) == "▁"  # no scale: nothing to draw
    assert spark(12, 10) == "█"


def test_sparkline_takes_the_highest_hour_of_each_utc_day_and_scales_to_the_highest_peak():
    hours = [_row("2026-11-01T00:00:00Z", peak=2), _row("2026-11-01T13:00:00Z", peak=20),
             _row("2026-11-01T23:00:00Z", peak=1),
             _row("2026-11-02T01:00:00+02:00", peak=19),  # 2026-11-01T23:00Z: still the 1st
             _row("2026-11-02T05:00:00Z", peak=10), _row("2026-11-02T06:00:00Z", final=False, peak=3)]
    text = admin_views.report(_report(hours, granularity="hour", max_seats=10))
    lines = text.splitlines()
    # top = max(max_seats 10, highest peak 20): 20 -> █, 10 -> 7 * 10 / 20 = 3.5 -> 4 -> ▅
    assert lines[-2] == "daily peaks (▁ none, █ 20 seats):"
    assert lines[-1] == "2026-11-01 █▅ 2026-11-02"
    assert any(line.startswith("2026-11-01T13:00:00Z ") for line in lines)  # hour rows show their time
    assert any(line.startswith("2026-11-02T06:00:00Z* ") for line in lines)


def test_sparkline_leaves_a_day_without_a_row_blank_and_wraps_long_periods():
    assert admin_views.sparkline(admin_views.daily_peaks([_row("2026-11-01T00:00:00Z", peak=10),
                                                         _row("2026-11-03T00:00:00Z", peak=10)]), 10) == [
        "2026-11-01 █ █ 2026-11-03"]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    year = [_row((start + timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%SZ"), peak=n % 11) for n in range(100)]
    lines = admin_views.sparkline(admin_views.daily_peaks(year), 10)
    assert [line[:10] for line in lines] == ["2026-01-01", "2026-03-04"]
    assert [text_width(line) for line in lines] == [10 + 1 + 62 + 1 + 10, 10 + 1 + 38 + 1 + 10]


USERS = {"license": "lic_7Hq2", "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z",
         "users": [{"uid": "alice", "seat_hours": 120.25, "sessions": 31, "peak_sessions": 2,
                    "last_seen": "2026-11-30T08:59:00Z"},
                   {"uid": "build-" + "x" * 60, "seat_hours": 3.0, "sessions": 4, "peak_sessions": 1,
                    "last_seen": "2026-11-02T10:00:00Z"},
                   {"uid": "Evil\x1b[2J\nforged line", "seat_hours": 0.5, "sessions": 1, "peak_sessions": 1,
                    "last_seen": "2026-11-03T10:00:00Z"},
                   {"uid": "田中太郎" * 12, "seat_hours": 1.0, "sessions": 1, "peak_sessions": 1,
                    "last_seen": "2026-11-04T10:00:00Z"}],
         "total": 57, "next": "c_4"}


def test_report_users_table_clips_long_uids_keeps_columns_and_prints_the_cursor():
    text = admin_views.report_users(inert(USERS))
    print(text)
    lines = text.splitlines()
    assert lines[0] == "users of lic_7Hq2, 2026-11-01T00:00:00Z until 2026-12-01T00:00:00Z: 4 of 57"
    assert lines[1].split() == ["UID", "SEAT-HOURS", "SESSIONS", "PEAK", "SESSIONS", "LAST", "SEEN"]
    assert lines[2].split() == ["alice", "120.25", "31", "2", "2026-11-30T08:59:00Z"]
    assert lines[3].startswith("build-" + "x" * 33 + "…  ")  # 40 columns at most, the last an ellipsis
    assert lines[4].startswith("Evil\\x1b[2J\\nforged line ")  # inert: no escape, no forged line
    assert lines[5].startswith("田中太郎" * 4 + "田中太…")  # wide characters count two columns
    assert len(lines) == 7 and lines[6] == "(more: --after c_4)"
    # every row's LAST SEEN starts in the same terminal column
    assert len({text_width(line[:line.index("2026-11-")]) for line in lines[2:6]}) == 1


def test_report_users_without_users_or_next_page():
    text = admin_views.report_users({**USERS, "users": [], "total": 0, "next": None})
    assert text.splitlines()[1:] == ["(no user held a seat in this period)"]


def test_clip_cuts_to_the_columns_with_an_ellipsis():
    assert clip("short", 10) == "short"
    assert clip("exactly-10", 10) == "exactly-10"
    assert clip("eleven-long", 10) == "eleven-lo…"
    assert text_width(clip("田" * 10, 7)) <= 7 and clip("田" * 10, 7) == "田田田…"


TENANTS = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z", "tenant": None,
           "licenses": [{"license": "lic_7Hq2", "tenant": "acme", "max_seats": 10, "peak": 7, "p95": 6,
                         "average": 3.1, "utilization": 0.31, "seat_hours": 2230.5, "hours_at_full": 4,
                         "denials": 17, "right_size": 8},
                        {"license": "lic_9", "tenant": "A Very Long Tenant Name Incorporated GmbH & Co. KG",
                         "max_seats": 5, "peak": 5, "p95": 5, "average": 4.75, "utilization": 0.95,
                         "seat_hours": 3420.0, "hours_at_full": 200, "denials": 312, "right_size": None}],
           "totals": {"licenses": 2, "seat_hours": 5650.5, "denials": 329, "peak_sum": 12}}


def test_tenant_report_rows_and_totals():
    text = admin_views.tenant_report(TENANTS)
    print(text)
    lines = text.splitlines()
    assert lines[0] == "licenses of all tenants, 2026-11-01T00:00:00Z until 2026-12-01T00:00:00Z"
    assert lines[1].split()[:3] == ["LICENSE", "TENANT", "SEATS"]
    assert lines[2].split() == ["lic_7Hq2", "acme", "10", "7", "6", "3.10", "31%", "2230.5", "4", "17", "8"]
    assert lines[3].startswith("lic_9     A Very Long Tenant Name…  ")  # 24 columns at most
    assert lines[3].split()[-9:] == ["5", "5", "5", "4.75", "95%", "3420.0", "200", "312", "-"]
    assert len(lines[1]) == len(lines[2]) == len(lines[3])
    assert lines[4] == "total: 2 licenses, 5650.5 seat-hours, 329 denials, peaks adding up to 12 seats"
    assert admin_views.tenant_report({**TENANTS, "tenant": "acme"}).startswith("licenses of tenant acme, ")
    assert admin_views.tenant_report({**TENANTS, "licenses": []}).endswith("(no licenses)")


# -- the command lines ---------------------------------------------------------------------------
class FakeClient:
    """AdminClient without a server: records each request, answers with what the test gave it."""

    calls: list[tuple[str, str, str, dict[str, str] | None]] = []
    answers: dict[str, Any] = {}

    def __init__(self, url: str, token: str, **_: Any) -> None:
        self.url = url

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def call(self, method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None) -> Any:
        FakeClient.calls.append(("json", method, path, query))
        return FakeClient.answers[path]

    def call_text(self, path: str, *, query: dict[str, str] | None = None, media_type: str = "text/csv") -> str:
        FakeClient.calls.append(("text", "GET", path, query))
        return FakeClient.answers[path]


SERVER = ["--base-url", "http://127.0.0.1:9", "--token", "t0ken"]


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(admin_commands, "AdminClient", FakeClient)
    FakeClient.calls, FakeClient.answers = [], {}
    return FakeClient


def _near_now(text: str) -> bool:
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return abs((datetime.now(UTC) - moment).total_seconds()) < 60


def test_report_csv_asks_for_the_servers_csv_and_writes_it_unchanged(fake, capsys):
    args = _parser().parse_args([*SERVER, "report", "lic_x", "--from", "2026-11-01", "--csv"])
    assert (args.command, args.license_id, args.from_, args.to, args.granularity, args.csv) == (
        "report", "lic_x", "2026-11-01", None, "day", True)
    body = "start,final,peak\r\n2026-11-01T00:00:00Z,true,7\r\n"
    fake.answers["licenses/lic_x/report"] = body
    assert main([*SERVER, "report", "lic_x", "--from", "2026-11-01", "--csv"]) == 0
    assert capsys.readouterr().out == body
    [(kind, method, path, query)] = fake.calls
    assert (kind, method, path) == ("text", "GET", "licenses/lic_x/report")
    assert query is not None and _near_now(query.pop("to"))
    assert query == {"from": "2026-11-01", "granularity": "day", "format": "csv"}


def test_report_prints_the_view_and_json_the_answer(fake, capsys):
    fake.answers["licenses/lic%2Fodd/report"] = _report(DAYS)
    assert main([*SERVER, "report", "lic/odd", "--from", "2026-11-01T00:00:00+01:00", "--to", "2026-11-04",
                 "--granularity", "hour"]) == 0
    assert "8 seats would have covered 99% of the demand" in capsys.readouterr().out
    assert fake.calls[-1] == ("json", "GET", "licenses/lic%2Fodd/report",
                              {"from": "2026-11-01T00:00:00+01:00", "to": "2026-11-04", "granularity": "hour"})
    assert main([*SERVER, "report", "lic/odd", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == _report(DAYS)


def test_report_defaults_to_the_30_days_before_now_from_midnight():
    args = _parser().parse_args(["report", "lic_x"])
    now = datetime(2026, 11, 18, 10, 30, 5, tzinfo=UTC)
    assert admin_commands._report_request(args, now) == (
        "licenses/lic_x/report", {"from": "2026-10-19T00:00:00Z", "to": "2026-11-18T10:30:05Z", "granularity": "day"})
    args = _parser().parse_args(["report", "lic_x", "--to", "2026-12-01"])
    assert admin_commands._report_request(args, now)[1]["from"] == "2026-11-01T00:00:00Z"


@pytest.mark.parametrize("argv", [["report", "lic_x", "--from", "2026-11-31"],
                                  ["report", "lic_x", "--from", "2026-11-01T00:00:00"],  # no zone
                                  ["report", "lic_x", "--granularity", "week"],
                                  ["report-users", "lic_x", "--sort", "name"]])
def test_a_bad_report_command_line_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(argv)
    assert exited.value.code == 2


def test_from_not_before_to_and_csv_with_json_are_usage_errors(fake, capsys):
    assert main([*SERVER, "report", "lic_x", "--from", "2026-12-01", "--to", "2026-12-01T00:00:00Z"]) == 2
    assert "--from 2026-12-01 is not before --to 2026-12-01T00:00:00Z" in capsys.readouterr().err
    assert main([*SERVER, "tenant-report", "--csv", "--json"]) == 2
    assert "--csv or --json, not both" in capsys.readouterr().err
    assert fake.calls == []


def test_report_users_asks_for_the_page_and_prints_its_table(fake, capsys):
    fake.answers["licenses/lic_x/report/users"] = USERS
    assert main([*SERVER, "report-users", "lic_x", "--from", "2026-11-01", "--to", "2026-12-01"]) == 0
    out = capsys.readouterr().out
    assert "Evil\\x1b[2J\\nforged line" in out and "\x1b" not in out  # shown inert
    assert out.rstrip().endswith("(more: --after c_4)")
    assert fake.calls[-1][3] == {"from": "2026-11-01", "to": "2026-12-01", "sort": "seat_hours", "order": "desc",
                                 "limit": "100"}
    fake.answers["licenses/lic_x/report/users"] = "uid,seat_hours\r\nalice,120.25\r\n"
    assert main([*SERVER, "report-users", "lic_x", "--from", "2026-11-01", "--sort", "uid", "--limit", "20",
                 "--after", "c_4", "--csv"]) == 0
    assert capsys.readouterr().out == "uid,seat_hours\r\nalice,120.25\r\n"  # the server's CSV, as it is
    kind, _, _, query = fake.calls[-1]
    assert kind == "text" and query is not None and query["format"] == "csv"
    assert query is not None and (query["sort"], query["order"], query["limit"], query["after"]) == (
        "uid", "asc", "20", "c_4")


def test_tenant_report_asks_for_one_tenant_or_all(fake, capsys):
    fake.answers["report"] = TENANTS
    assert main([*SERVER, "tenant-report", "--tenant", "acme", "--from", "2026-11-01", "--to", "2026-12-01"]) == 0
    assert "total: 2 licenses" in capsys.readouterr().out
    assert fake.calls[-1] == ("json", "GET", "report", {"from": "2026-11-01", "to": "2026-12-01", "tenant": "acme"})
    fake.answers["report"] = "license,tenant\r\nlic_7Hq2,acme\r\n"
    assert main([*SERVER, "tenant-report", "--from", "2026-11-01", "--to", "2026-12-01", "--csv"]) == 0
    assert capsys.readouterr().out == "license,tenant\r\nlic_7Hq2,acme\r\n"
    assert fake.calls[-1] == ("text", "GET", "report", {"from": "2026-11-01", "to": "2026-12-01", "format": "csv"})


# -- AdminClient.call_text: the raw body of ?format=csv ------------------------------------------
def _client(handler) -> admin_api.AdminClient:
    client = admin_api.AdminClient("http://admin.test/admin", "t0ken", inert=inert)
    client._http = httpx.Client(transport=httpx.MockTransport(handler))
    return client


def test_call_text_returns_the_csv_body_as_it_is():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, headers={"content-type": "text/csv; charset=utf-8"},
                              content="uid,seat_hours\r\nJosé,1.5\r\n".encode())

    with _client(handler) as client:
        assert client.call_text("licenses/lic_x/report", query={"format": "csv"}) == "uid,seat_hours\r\nJosé,1.5\r\n"
    assert str(seen[0]) == "http://admin.test/admin/licenses/lic_x/report?format=csv"


def test_call_text_refusals_and_json_instead_of_csv():
    def refused(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": {"code": "forbidden", "message": "not your tenant"}})

    with _client(refused) as client, pytest.raises(admin_api.AdminError) as error:
        client.call_text("licenses/lic_x/report")
    assert (error.value.status, error.value.code) == (403, "forbidden")

    def json_instead(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"license": "lic_x"})

    with _client(json_instead) as client, pytest.raises(CliError) as wrong:
        client.call_text("licenses/lic_x/report")
    assert "without text/csv" in wrong.value.message and not isinstance(wrong.value, UsageError)
