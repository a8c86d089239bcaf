"""Usage history and reports, end to end through the functions: the sweep closes hours, the
admin routes report them (JSON and CSV), statements verify with jwks alone.

Each test runs in a world of its own (tests/functions/conftest.py: its own Redis database,
Firestore project and clock), since the sweep closes hours for every license there is.
Times are UTC; the day chosen, 2027-03-14, is the day the US changes to summer time.
"""

from __future__ import annotations

import csv
import io

import pytest

from shared.domain.policies import Rule, SeatPolicy
from shared.domain.times import parse_rfc3339

DAY = "2027-03-14"


def at(world, when: str) -> None:
    """Set the world's clock: "HH:MM" on DAY, or a whole RFC 3339 time."""
    world.clock.set_ms(parse_rfc3339(when if "T" in when else f"{DAY}T{when}:00Z"))


def owner(world, path: str, **query):
    response = world.admin("GET", path, uid="vendor", role="owner", query=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def hours(world, lic, start: str, end: str) -> list[dict]:
    return owner(world, f"licenses/{lic.id}/report", granularity="hour", **{"from": f"{DAY}T{start}:00Z",
                                                                         "to": f"{DAY}T{end}:00Z"})["series"]


def long_lease(world, seats: int = 2, **fields):
    """A license whose leases outlive the test's hours without heartbeats."""
    return world.license(seats=seats, lease_ttl_s=86_400, heartbeat_interval_s=3_600, **fields)


def sweep_closing(world, when: str, closed: int) -> dict:
    at(world, when)
    status, body = world.sweep()
    assert status == 200 and body["hours_closed"] == closed, body
    return body


def test_a_session_over_three_hours_is_split_into_them_and_each_hour_closes_once(world):
    world.rt.usage.set_closed_through(f"{DAY}T04")
    at(world, "05:30")
    lic, key = long_lease(world)
    sid = world.acquire(key, uid="ann")
    sweep_closing(world, "06:03", 1)
    sweep_closing(world, "06:30", 0)
    sweep_closing(world, "07:03", 1)
    at(world, "07:50")
    assert world.call("release", {"session_id": sid}, uid="ann")[0] == 200
    body = sweep_closing(world, "08:03", 1)
    assert body["firestore_writes"] >= 1

    rows = hours(world, lic, "05:00", "08:00")
    assert [r["start"] for r in rows] == [f"{DAY}T0{h}:00:00.000Z" for h in (5, 6, 7)]
    assert [r["seat_seconds"] for r in rows] == [1800, 3600, 3000]
    assert [(r["grants"], r["releases"], r["peak"], r["final"]) for r in rows] == [
        (1, 0, 1, True), (0, 0, 1, True), (0, 1, 1, True)]
    users = owner(world, f"licenses/{lic.id}/report/users", **{"from": DAY, "to": "2027-03-15"})
    assert users["users"] == [{"uid": "ann", "seat_hours": round(8400 / 3600, 3), "sessions": 1,
                               "peak_sessions": 1, "last_seen": f"{DAY}T07:50:00.000Z"}]

    # A sweep that crashed after writing (or ran twice) closes the same hours again: the
    # same documents, and nobody's seat time counted twice.
    world.rt.usage.set_closed_through(f"{DAY}T04")
    sweep_closing(world, "08:04", 3)
    assert hours(world, lic, "05:00", "08:00") == rows
    assert owner(world, f"licenses/{lic.id}/report/users", **{"from": DAY, "to": "2027-03-15"})["users"] == \
        users["users"]


def test_a_redis_flush_mid_hour_leaves_the_hours_figures_right(world):
    world.rt.usage.set_closed_through(f"{DAY}T04")
    at(world, "05:05")
    lic, key = long_lease(world, seats=1)
    holder = world.acquire(key, uid="holder")
    at(world, "05:10")
    for _ in range(2):
        assert world.call("acquire", {"license_key": key, "hardware_id": "hw-late"}, uid="late")[0] == 409
    sweep_closing(world, "05:11", 0)  # the two refusals are checkpointed
    at(world, "05:20")
    world.rt.redis.flushdb()
    at(world, "05:25")  # the table is rebuilt (the holder's seat is back), and refuses again
    assert world.call("acquire", {"license_key": key, "hardware_id": "hw-late"}, uid="late")[0] == 409
    at(world, "05:40")
    assert world.call("release", {"session_id": holder}, uid="holder")[0] == 200
    sweep_closing(world, "06:03", 1)

    [row] = hours(world, lic, "05:00", "06:00")
    assert (row["peak"], row["seat_seconds"], row["grants"], row["releases"]) == (1, 35 * 60, 1, 1)
    assert row["denials"] == row["denials_no_seat"] == 3  # 2 from the checkpoint, 1 counted after
    # (the tolerance the README states: after a loss, a caller refused before it is counted
    # once more among the distinct callers refused)
    assert row["denied_callers"] == 2


def test_refusals_are_counted_by_reason_live_in_the_open_hour(world):
    world.rt.usage.set_closed_through(f"{DAY}T04")
    at(world, "05:00")
    lic, key = long_lease(world, seats=1, max_sessions_per_user=1,
                          policy=SeatPolicy(exclude=Rule(users=("blocked",))))
    suspended, suspended_key = long_lease(world, suspended=True)
    expired, expired_key = long_lease(world, expires_ms=parse_rfc3339(f"{DAY}T04:00:00Z"))
    world.acquire(key, uid="ann")
    at(world, "05:10")
    tries = [(key, "late", "hw", 409), (key, "blocked", "hw", 403), (key, "ann", "hw-2", 409),
             (suspended_key, "ann", "hw", 403), (expired_key, "ann", "hw", 410)]
    for license_key, uid, hw, status in tries:
        assert world.call("acquire", {"license_key": license_key, "hardware_id": hw}, uid=uid)[0] == status
    at(world, "05:30")
    [row] = hours(world, lic, "05:00", "06:00")
    assert row["final"] is False and row["peak"] == 1 and row["seat_seconds"] == 1800
    assert {k: v for k, v in row.items() if k.startswith("denials_") and v} == {
        "denials_no_seat": 1, "denials_policy": 1, "denials_user_limit": 1}
    assert hours(world, suspended, "05:00", "06:00")[0]["denials_suspended"] == 1
    assert hours(world, expired, "05:00", "06:00")[0]["denials_expired"] == 1
    # and they stay counted once the hour closes
    sweep_closing(world, "06:03", 1)
    [closed] = hours(world, lic, "05:00", "06:00")
    assert closed["final"] is True and closed["denials"] == 3


def test_a_report_in_a_zone_that_changes_clocks_is_still_utc_hours(world):
    world.rt.usage.set_closed_through(f"{DAY}T04")
    at(world, "2027-03-15T06:00:00Z")
    lic, _ = long_lease(world)
    # New York's 14 March has 23 hours (02:00 EST becomes 03:00 EDT): 23 UTC hours
    report = owner(world, f"licenses/{lic.id}/report", granularity="hour",
                   **{"from": f"{DAY}T00:00:00-05:00", "to": "2027-03-15T00:00:00-04:00"})
    assert report["from"] == f"{DAY}T05:00:00.000Z" and report["to"] == "2027-03-15T04:00:00.000Z"
    assert len(report["series"]) == 23 and all(r["start"].endswith(":00:00.000Z") for r in report["series"])


def test_day_reports_summary_and_right_sizing(world):
    world.rt.usage.set_closed_through(f"{DAY}T04")
    at(world, "05:00")
    lic, key = long_lease(world, seats=2)
    a, b = world.acquire(key, uid="ann"), world.acquire(key, uid="bob")
    at(world, "05:30")
    for uid in ("cy", "dee"):
        assert world.call("acquire", {"license_key": key, "hardware_id": "hw"}, uid=uid)[0] == 409
    at(world, "06:00")
    for sid, uid in ((a, "ann"), (b, "bob")):
        assert world.call("release", {"session_id": sid}, uid=uid)[0] == 200
    sweep_closing(world, "06:03", 1)
    at(world, "2027-03-16T00:30:00Z")
    world.sweep()  # catches up (up to a day of hours per run)
    report = owner(world, f"licenses/{lic.id}/report", **{"from": DAY, "to": "2027-03-16"})
    assert [r["start"][:10] for r in report["series"]] == [DAY, "2027-03-15"]
    first = report["series"][0]
    assert first["peak"] == 2 and first["seat_seconds"] == 7200 and first["at_full_s"] == 3600
    assert first["denials_no_seat"] == 2 and first["denied_callers"] == 2 and first["final"] is True
    summary = report["summary"]
    assert summary["peak"] == 2 and summary["hours_at_full"] == 1 and summary["seat_hours"] == 2.0
    assert summary["p95"] == 0 and summary["average"] == round(7200 / (2 * 86400), 3)
    # 47 of 48 hours idle (97.9% of the time, short of 99%), and one hour at full use with
    # two callers refused: that hour wanted 4 seats
    assert summary["right_size"]["seats"] == 4 and summary["right_size"]["coverage"] == 0.99
    week = owner(world, f"licenses/{lic.id}/report", **{"from": "2027-03-10", "to": "2027-03-16"})
    assert len(week["series"]) == 6 and week["summary"]["right_size"]["seats"] == 0  # 143 of 144 hours idle


def test_reports_as_csv_open_cleanly_in_a_spreadsheet(world):
    world.rt.usage.set_closed_through(f"{DAY}T04")
    at(world, "05:00")
    lic, key = long_lease(world)
    world.acquire(key, uid="=HYPERLINK(\"http://evil\")")
    world.acquire(key, uid="plain", hw="hw-2")
    sweep_closing(world, "06:03", 1)
    window = {"from": f"{DAY}T05:00:00Z", "to": f"{DAY}T07:00:00Z"}

    by_query = world.admin("GET", f"licenses/{lic.id}/report", role="owner",
                           query={"granularity": "hour", "format": "csv", **window})
    by_accept = world.admin("GET", f"licenses/{lic.id}/report", role="owner", headers={"Accept": "text/csv"},
                            query={"granularity": "hour", **window})
    for response in (by_query, by_accept):
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert response.headers["Content-Disposition"].startswith(f'attachment; filename="{lic.id}_hour_')
    text = by_query.get_data(as_text=True)
    assert text.startswith("\ufeffstart,final,max_seats,peak,") and text.endswith("\r\n")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [r["start"] for r in rows] == [f"{DAY}T05:00:00.000Z", f"{DAY}T06:00:00.000Z"]
    assert rows[0]["final"] == "true" and rows[1]["final"] == "false"
    assert rows[0]["peak"] == "2" and rows[0]["queue_wait_p50_s"] == ""
    assert by_query.get_data(as_text=True) == by_accept.get_data(as_text=True)

    users = world.admin("GET", f"licenses/{lic.id}/report/users", role="owner", query={"format": "csv", **window})
    table = list(csv.reader(io.StringIO(users.get_data(as_text=True).lstrip("\ufeff"))))
    assert table[0] == ["uid", "seat_hours", "sessions", "peak_sessions", "last_seen"]
    # a uid a spreadsheet would run as a formula stays text
    assert sorted(row[0] for row in table[1:]) == ["'=HYPERLINK(\"http://evil\")", "plain"]
    # JSON stays the default, whatever else is accepted
    assert world.admin("GET", f"licenses/{lic.id}/report", role="owner",
                       headers={"Accept": "*/*"}).mimetype == "application/json"


def test_no_report_route_reads_another_tenants_license(world):
    world.rt.provisioning.create_tenant("Other", tenant_id="others", actor="tests")
    world.rt.usage.set_closed_through(f"{DAY}T04")
    at(world, "05:00")
    mine, key = long_lease(world)
    world.acquire(key, uid="ann")
    theirs, _ = long_lease(world, tenant="others")
    sweep_closing(world, "2027-03-15T00:03:00Z", 19)
    routes = ["report", "report/users", "statement?month=2027-03", "usage"]
    for route in routes:
        path, _, query = route.partition("?")
        args = dict([query.split("=")]) if query else {}
        own = world.admin("GET", f"licenses/{mine.id}/{path}", tenant="sweepers", query=args)
        assert own.status_code == 200, (route, own.get_json())
        other = world.admin("GET", f"licenses/{mine.id}/{path}", tenant="others", query=args)
        missing = world.admin("GET", f"licenses/lic_{'0' * 20}/{path}", tenant="others", query=args)
        assert other.status_code == missing.status_code == 404, route
        assert other.get_json()["error"]["message"].replace(mine.id, "X") == \
            missing.get_json()["error"]["message"].replace(f"lic_{'0' * 20}", "X")
        user = world.admin("GET", f"licenses/{mine.id}/{path}", role="", tenant="sweepers", query=args)
        assert user.status_code == 403, route
    # the tenant report: an admin sees its own tenant only, whatever it asks for
    own = world.admin("GET", "report", tenant="sweepers", query={"from": DAY}).get_json()
    assert [row["license"] for row in own["licenses"]] == [mine.id] and own["tenant"] == "sweepers"
    assert own["licenses"][0]["seat_hours"] == 19.0
    asked = world.admin("GET", "report", tenant="sweepers", query={"from": DAY, "tenant": "others"}).get_json()
    assert asked["licenses"] == []
    everyone = owner(world, "report", **{"from": DAY})
    assert {row["license"] for row in everyone["licenses"]} == {mine.id}  # the owner: licenses with use
    one = owner(world, "report", **{"from": DAY, "tenant": "others"})
    assert [row["license"] for row in one["licenses"]] == [theirs.id] and one["licenses"][0]["seat_hours"] == 0


@pytest.mark.parametrize("route, query, field", [
    ("report", {"granularity": "week"}, "granularity"),
    ("report", {"from": "2027-03-10", "to": "2027-03-01"}, "from"),
    ("report", {"from": "2027-03-01T00:00:00"}, "from"),  # no zone
    ("report", {"from": "2099-01-01"}, "from"),  # not begun
    ("report", {"granularity": "hour", "from": "2026-11-01"}, "from"),  # too long hour by hour
    ("report", {"format": "xml"}, "format"),
    ("report/users", {"sort": "password"}, "sort"),
    ("report/users", {"limit": "0"}, "limit"),
    ("statement", {"month": "2027-13"}, "month"),
    ("statement", {}, "month"),
    ("statement", {"month": "2099-01"}, "month"),  # nothing closed yet
])
def test_bad_report_queries_are_400_naming_the_field(world, route, query, field):
    at(world, "06:00")
    lic, _ = long_lease(world)
    response = world.admin("GET", f"licenses/{lic.id}/{route}", role="owner", query=query)
    body = response.get_json()
    assert response.status_code == 400 and body["error"]["code"] == "INVALID_REQUEST", body
    named = body["error"].get("field") or [f["field"] for f in body["error"].get("fields", [])]
    assert field in named


def test_hourly_figures_past_the_retention_are_rolled_up_into_days(world):
    world.rt.usage.set_closed_through(f"{DAY}T04")
    rt = world.reconfigure(usage_retention_days=2)
    at(world, "05:00")
    lic, key = long_lease(world)
    sid = world.acquire(key, uid="ann")
    at(world, "07:00")
    assert world.call("release", {"session_id": sid}, uid="ann")[0] == 200
    sweep_closing(world, "07:03", 2)
    at(world, "2027-03-17T00:10:00Z")
    for _ in range(3):
        world.sweep()  # catching up, and rolling the 14th up once it is past the retention
    doc = rt.usage.days([f"{lic.id}_{DAY}"])[f"{lic.id}_{DAY}"]
    assert "hours" not in doc and doc["has_hours"] is False and doc["total"]["seat_seconds"] == 7200
    assert doc["users"]["ann"]["s"] == 7200
    refused = world.admin("GET", f"licenses/{lic.id}/report", role="owner",
                          query={"granularity": "hour", "from": DAY, "to": "2027-03-15"})
    assert refused.status_code == 400 and "kept for 2 days" in refused.get_json()["error"]["message"]
    days = owner(world, f"licenses/{lic.id}/report", **{"from": DAY, "to": "2027-03-15"})
    assert days["series"][0]["seat_seconds"] == 7200 and days["summary"]["seat_hours"] == 2.0


def test_a_months_statement_verifies_with_jwks_alone_and_any_tampering_fails(world):
    import base64
    import json

    from coditect_license import TokenInvalid, verify_statement

    world.rt.usage.set_closed_through("2027-02-10T08")
    at(world, "2027-02-10T09:00:00Z")
    lic, key = long_lease(world)
    sid = world.acquire(key, uid="ann")
    at(world, "2027-02-10T11:30:00Z")
    assert world.call("release", {"session_id": sid}, uid="ann")[0] == 200
    sweep_closing(world, "2027-02-10T12:03:00Z", 3)
    world.rt.usage.set_closed_through("2027-02-28T22")  # (the quiet rest of the month, closed)
    sweep_closing(world, "2027-03-01T00:05:00Z", 1)

    answer = owner(world, f"licenses/{lic.id}/statement", month="2027-02")
    status, jwks = world.call("jwks", method="GET")
    assert status == 200
    now_s = world.clock.now_ms() / 1000  # (the statement is stamped by the world's clock)
    claims = verify_statement(answer["statement"], jwks, now=now_s)
    assert claims == answer["claims"]
    assert (claims["sub"], claims["tenant"], claims["month"], claims["final"]) == (lic.id, "sweepers", "2027-02", True)
    assert claims["figures"]["seat_hours"] == 2.5 and claims["figures"]["peak"] == 1
    assert claims["figures"]["grants"] == 1 and claims["series"]["count"] == 28 * 24
    # the hourly report of the month is the series the statement hashed
    report = owner(world, f"licenses/{lic.id}/report", granularity="hour",
                   **{"from": "2027-02-01", "to": "2027-03-01"})
    assert verify_statement(answer["statement"], jwks, series=report, now=now_s) == claims
    report["series"][9 * 24 + 10]["seat_seconds"] += 1  # 10 February, 10:00
    with pytest.raises(TokenInvalid, match="sha256"):
        verify_statement(answer["statement"], jwks, series=report, now=now_s)
    # any figure changed in the statement itself breaks its signature
    head, body, signature = answer["statement"].split(".")
    forged = dict(claims, figures=dict(claims["figures"], seat_hours=1.0))
    forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenInvalid):
        verify_statement(f"{head}.{forged_body}.{signature}", jwks, now=now_s)
    # issuing one is in the audit log, with the hash a dispute would compare
    events = [e for e in world.rt.store.list_events(tenant_id="sweepers", license_id=lic.id)
              if e.type == "usage.statement"]
    assert [e.details["series_sha256"] for e in events] == [claims["series"]["sha256"]]

    # the month under way: what is closed so far, and said so
    early = world.admin("GET", f"licenses/{lic.id}/statement", role="owner", query={"month": "2027-03"})
    assert early.status_code == 400 and "no hour of 2027-03 is closed yet" in early.get_json()["error"]["message"]
    sweep_closing(world, "2027-03-01T02:03:00Z", 2)
    current = owner(world, f"licenses/{lic.id}/statement", month="2027-03")["claims"]
    assert current["final"] is False and current["through"] == "2027-03-01T02:00:00Z"
    assert current["series"]["count"] == 2


def test_a_sweep_that_fails_halfway_through_the_usage_step_loses_and_doubles_nothing(world):
    from shared.errors import BackendUnavailable

    world.rt.usage.set_closed_through(f"{DAY}T04")
    at(world, "05:00")
    lic, key = long_lease(world, seats=1)
    world.acquire(key, uid="ann")
    at(world, "05:30")
    assert world.call("acquire", {"license_key": key, "hardware_id": "hw"}, uid="bob")[0] == 409
    usage = world.rt.usage
    real = {name: getattr(usage, name) for name in ("write_checkpoint", "set_closed_through")}

    def fails_once(name):
        def call(*args, **kwargs):
            setattr(usage, name, real[name])  # the next call goes through
            raise BackendUnavailable("firestore")
        return call

    usage.write_checkpoint = fails_once("write_checkpoint")  # the counters taken are not written...
    at(world, "05:31")
    assert world.sweep()[0] == 503
    usage.set_closed_through = fails_once("set_closed_through")  # ...and the day is written, the hour not marked
    at(world, "06:03")
    assert world.sweep()[0] == 503
    sweep_closing(world, "06:04", 1)
    sweep_closing(world, "06:05", 0)
    [row] = hours(world, lic, "05:00", "06:00")
    assert (row["seat_seconds"], row["grants"], row["denials_no_seat"], row["denied_callers"]) == (3600, 1, 1, 1)
    users = owner(world, f"licenses/{lic.id}/report/users", **{"from": DAY, "to": "2027-03-15"})["users"]
    # the closed hour once, and the open one live up to now (06:05)
    assert [(u["uid"], u["seat_hours"], u["sessions"]) for u in users] == [("ann", round(3900 / 3600, 3), 1)]


def test_checkpoints_spread_over_shards_are_read_whole_and_dropped_whole(world):
    world.reconfigure(usage_checkpoint_shards=4)
    world.rt.usage.set_closed_through(f"{DAY}T04")
    at(world, "05:00")
    full = [long_lease(world, seats=1) for _ in range(6)]
    for n, (_, key) in enumerate(full):
        world.acquire(key, uid=f"holder-{n}")
        for _ in range(n + 1):
            assert world.call("acquire", {"license_key": key, "hardware_id": "hw"}, uid="late")[0] == 409
    sweep_closing(world, "05:30", 0)
    from google.cloud.firestore import FieldFilter

    documents = world.rt.firestore_client.collection("usage_checkpoints").where(
        filter=FieldFilter("hour", "==", f"{DAY}T05")).get()
    assert 1 < len(documents) <= 4
    assert {lic.id: c["denials:no_seat"] for lic, c in
            ((lic, world.rt.usage.checkpoint(f"{DAY}T05").get(lic.id, {})) for lic, _ in full)} == \
        {lic.id: n + 1 for n, (lic, _) in enumerate(full)}
    sweep_closing(world, "06:03", 1)
    for n, (lic, _) in enumerate(full):
        assert hours(world, lic, "05:00", "06:00")[0]["denials_no_seat"] == n + 1
    assert world.rt.firestore_client.collection("usage_checkpoints").get() == []


def test_closing_an_hour_of_many_licenses_goes_on_across_runs_where_it_stopped(world, monkeypatch):
    import shared.licensing.usage_history as usage_history

    monkeypatch.setattr(usage_history, "CLOSE_CHUNK", 2)
    world.rt.usage.set_closed_through(f"{DAY}T04")
    at(world, "05:00")
    licenses = [long_lease(world, seats=1) for _ in range(5)]
    for n, (_, key) in enumerate(licenses):
        world.acquire(key, uid=f"user-{n}")
    at(world, "06:03")
    lock = world.rt.sweep_ledger.lock()
    assert lock.acquire(ttl_ms=60_000)
    history = world.rt.usage_history
    # out of time at once: each run still closes one chunk of licenses, and notes where it stopped
    assert history.close_due_hours(lock, deadline=0)[0] == 0
    assert world.rt.usage.closing_after(f"{DAY}T05") == sorted(lic.id for lic, _ in licenses)[1]
    assert history.close_due_hours(lock, deadline=0)[0] == 0
    assert history.close_due_hours(lock, deadline=0)[0] == 1  # the last license, then the hour
    assert world.rt.usage.closing_after(f"{DAY}T05") == "" and history.first_open_hour(fresh=True) == f"{DAY}T06"
    lock.release()
    for lic, _ in licenses:
        [row] = hours(world, lic, "05:00", "06:00")
        assert (row["final"], row["seat_seconds"], row["grants"]) == (True, 3600, 1)
