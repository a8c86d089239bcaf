"""Conflict detection (issue 16, section 5): each rule raises a flag above its threshold and
stays quiet at it, with evidence of that license only; flags are published as
anomaly.detected, listed and acknowledged by the license's administrators only, and raised
again only when the count grows past what was acknowledged. The seat functions note what
they see in Redis (shared/seats/signals.py); the sweep evaluates (every run here)."""

from __future__ import annotations

import pytest

from tests.functions.test_notifications import inbox  # noqa: F401 - a fixture


@pytest.fixture
def watched(world):
    world.reconfigure(anomaly_check_interval_s=0)  # evaluate at every sweep, not every five minutes
    return world


def _seat(world, name: str, body: dict, *, uid: str, ip: str = "127.0.0.1"):
    answer = world.clients[name].open("/", method="POST", json=body, environ_base={"REMOTE_ADDR": ip},
                                      headers={"Authorization": f"Bearer {world.token(uid)}"})
    assert answer.status_code in (200, 201), answer.get_json()
    return answer.get_json()


def _flags(world, lic, **query):
    answer = world.admin("GET", f"licenses/{lic.id}/anomalies", tenant=world.tenant, query=query)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["anomalies"]


def _swept(world) -> dict:
    status, report = world.sweep()
    assert status == 200, report
    return report


def test_one_user_on_more_hardware_than_allowed_is_flagged_and_three_is_not(watched, inbox):  # noqa: F811
    lic, key = watched.license(seats=20)
    for hw in ("hw-1", "hw-2", "hw-3", "hw-4"):
        _seat(watched, "acquire", {"license_key": key, "hardware_id": hw}, uid="sharer")
    for hw in ("hw-1", "hw-2", "hw-3"):
        _seat(watched, "acquire", {"license_key": key, "hardware_id": hw}, uid="roamer")
    report = _swept(watched)
    assert report["anomalies"] == {"evaluated": 1, "raised": 1}, report  # (hw-1..3: two users each, allowed)
    flags = {(f["rule"], f["subject"]): f for f in _flags(watched, lic)}
    flag = flags[("hardware_per_user", "sharer")]
    assert flag["state"] == "open" and flag["license"] == lic.id and flag["tenant"] == watched.tenant
    assert flag["evidence"]["count"] == 4 and flag["evidence"]["threshold"] == 3
    assert sorted(flag["evidence"]["examples"]) == ["hw-1", "hw-2", "hw-3", "hw-4"]
    assert flag["evidence"]["first_seen"] <= flag["evidence"]["last_seen"]
    assert ("hardware_per_user", "roamer") not in flags
    [message] = [m for m in inbox({lic.id}, want=1) if m["type"] == "anomaly.detected"]
    assert message["type"] == "anomaly.detected" and message["data"]["subject"] == "sharer"
    assert message["data"]["evidence"]["count"] == 4


def test_one_hardware_id_used_by_more_users_than_allowed_is_flagged(watched):
    lic, key = watched.license(seats=20)
    for uid in ("a", "b", "c", "d"):
        _seat(watched, "acquire", {"license_key": key, "hardware_id": "shared-box"}, uid=uid)
    for uid in ("a", "b", "c"):
        _seat(watched, "acquire", {"license_key": key, "hardware_id": "team-box"}, uid=uid)
    _swept(watched)
    flags = [(f["rule"], f["subject"], f["evidence"]["count"]) for f in _flags(watched, lic)]
    assert flags == [("users_per_hardware", "shared-box", 4)]


def test_a_session_heartbeating_from_many_addresses_is_flagged(watched):
    lic, key = watched.license(seats=5)
    shared = _seat(watched, "acquire", {"license_key": key, "hardware_id": "h1"}, uid="u1", ip="198.51.100.1")
    steady = _seat(watched, "acquire", {"license_key": key, "hardware_id": "h2"}, uid="u2", ip="198.51.100.9")
    for ip in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):  # the token handed around: 4 addresses
        _seat(watched, "heartbeat", {"session_id": shared["session_id"]}, uid="u1", ip=ip)
    for ip in ("198.51.100.9", "198.51.100.10"):  # a laptop changing networks: 2 addresses
        _seat(watched, "heartbeat", {"session_id": steady["session_id"]}, uid="u2", ip=ip)
    _swept(watched)
    [flag] = _flags(watched, lic)
    assert (flag["rule"], flag["subject"], flag["uid"]) == ("addresses_per_session", shared["session_id"], "u1")
    assert sorted(flag["evidence"]["examples"]) == ["198.51.100.1", "203.0.113.1", "203.0.113.2", "203.0.113.3"]


def test_seat_cycling_above_the_rate_an_administrator_set_is_flagged(watched):
    lic, key = watched.license(seats=2)
    changed = watched.admin("PATCH", f"licenses/{lic.id}", tenant=watched.tenant,
                            body={"anomaly_rules": {"grants_per_user": {"max": 5, "window_s": 600}}})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["license"]["anomaly_rules"]["grants_per_user"] == {"max": 5, "window_s": 600}
    assert changed.get_json()["license"]["anomaly_rules"]["hardware_per_user"] == {"max": 3, "window_s": 86400}
    for uid, cycles in (("cycler", 6), ("steady", 5)):
        for _ in range(cycles):
            sid = _seat(watched, "acquire", {"license_key": key, "hardware_id": f"{uid}-hw"}, uid=uid)["session_id"]
            _seat(watched, "release", {"session_id": sid}, uid=uid)
    _swept(watched)
    assert [(f["rule"], f["subject"], f["evidence"]["count"]) for f in _flags(watched, lic)] == [
        ("grants_per_user", "cycler", 6)]


def test_a_rule_set_to_zero_is_off_and_a_bad_threshold_changes_nothing(watched):
    lic, key = watched.license(seats=20)
    path = f"licenses/{lic.id}"
    for bad in ({"hardware_per_user": {"max": -1}}, {"hardware_per_user": {"window_s": 10}},
                {"nope": {"max": 1}}, {"hardware_per_user": {"max": "3"}}, {"hardware_per_user": {"limit": 3}}):
        answer = watched.admin("PATCH", path, tenant=watched.tenant, body={"anomaly_rules": bad})
        assert answer.status_code == 400, (bad, answer.get_json())
    assert watched.admin("PATCH", path, tenant=watched.tenant, body={"anomaly_rules": None}).status_code == 400
    assert watched.rt.store.get_license(lic.id).anomaly_rules == lic.anomaly_rules
    assert watched.admin("PATCH", path, tenant=watched.tenant,
                         body={"anomaly_rules": {"hardware_per_user": {"max": 0}}}).status_code == 200
    for hw in ("hw-1", "hw-2", "hw-3", "hw-4", "hw-5"):
        _seat(watched, "acquire", {"license_key": key, "hardware_id": hw}, uid="anyone")
    _swept(watched)
    assert _flags(watched, lic) == []


def test_an_acknowledged_flag_is_raised_again_only_when_its_count_grows(watched):
    lic, key = watched.license(seats=20)
    for hw in ("hw-1", "hw-2", "hw-3", "hw-4"):
        _seat(watched, "acquire", {"license_key": key, "hardware_id": hw}, uid="sharer")
    _swept(watched)
    [flag] = _flags(watched, lic)
    done = watched.admin("POST", f"anomalies/{flag['id']}/acknowledge", tenant=watched.tenant, uid="sec-admin",
                         body={"note": "two desktops, two laptops: agreed with the customer"})
    assert done.status_code == 200, done.get_json()
    acknowledged = done.get_json()["anomaly"]
    assert acknowledged["state"] == "acknowledged" and acknowledged["acknowledged"]["by"] == "sec-admin"
    assert acknowledged["acknowledged"]["count"] == 4
    again = watched.admin("POST", f"anomalies/{flag['id']}/acknowledge", tenant=watched.tenant, body={})
    assert again.status_code == 400
    assert _swept(watched)["anomalies"]["raised"] == 0  # the same four: still acknowledged
    assert _flags(watched, lic, state="open") == []
    _seat(watched, "acquire", {"license_key": key, "hardware_id": "hw-5"}, uid="sharer")
    assert _swept(watched)["anomalies"]["raised"] == 1
    [reopened] = _flags(watched, lic, state="open")
    assert reopened["times_raised"] == 2 and reopened["evidence"]["count"] == 5
    kinds = [e.type for e in watched.rt.store.list_events(tenant_id=watched.tenant, license_id=lic.id, limit=100)]
    assert kinds.count("anomaly.detected") == 2 and kinds.count("anomaly.acknowledge") == 1


def test_nobody_reads_or_acknowledges_another_tenants_flags(watched):
    lic, key = watched.license(seats=20)
    for hw in ("hw-1", "hw-2", "hw-3", "hw-4"):
        _seat(watched, "acquire", {"license_key": key, "hardware_id": hw}, uid="sharer")
    _swept(watched)
    [flag] = _flags(watched, lic)
    other = "other-tenant"
    assert watched.admin("GET", f"licenses/{lic.id}/anomalies", tenant=other).status_code == 404
    assert watched.admin("GET", "anomalies", tenant=other, query={"tenant": watched.tenant}).get_json() == {
        "anomalies": [], "next_after": None}
    assert watched.admin("GET", "anomalies", tenant=other).get_json()["anomalies"] == []
    assert watched.admin("POST", f"anomalies/{flag['id']}/acknowledge", tenant=other, body={}).status_code == 404
    assert watched.admin("POST", "anomalies/not-a-flag/acknowledge", tenant=other, body={}).status_code == 404
    assert watched.admin("GET", "anomalies", tenant=watched.tenant, role="").status_code == 403
    assert watched.admin("PATCH", f"licenses/{lic.id}", tenant=other,
                         body={"anomaly_rules": {"hardware_per_user": {"max": 0}}}).status_code == 404
    # the tenant's own admin and the owner see it
    assert [f["id"] for f in watched.admin("GET", "anomalies", tenant=watched.tenant).get_json()["anomalies"]] == [
        flag["id"]]
    owner = watched.admin("GET", "anomalies", role="owner", uid="vendor", query={"tenant": watched.tenant})
    assert [f["id"] for f in owner.get_json()["anomalies"]] == [flag["id"]]


def test_machine_keys_are_not_noted(watched):
    lic, key = watched.license(seats=5)
    made = watched.admin("POST", "keys", tenant=watched.tenant, body={"name": "farm", "licenses": [lic.id]})
    assert made.status_code == 201, made.get_json()
    machine_key = made.get_json()["api_key"]
    for hw in ("runner-1", "runner-2", "runner-3", "runner-4", "runner-5"):  # one key, a build farm
        answer = watched.clients["acquire"].open("/", method="POST", json={"license_key": key, "hardware_id": hw},
                                                 headers={"Authorization": f"Bearer {machine_key}"})
        assert answer.status_code in (200, 201), answer.get_json()
    _swept(watched)
    assert _flags(watched, lic) == []
