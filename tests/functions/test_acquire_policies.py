"""Seat policies through the functions (issue 14): who may hold a seat, which seat, and
what the holder and the audit log are told. The policy is set over the admin API, so
each test also shows an edit taking effect at once.
"""

from __future__ import annotations

import base64
import json

import pytest


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture
def set_policy(call):
    def put(license_id: str, policy: dict) -> None:
        status, body, _ = call("admin", {"policy": policy}, method="PATCH", path=f"/licenses/{license_id}",
                               uid="vendor", role="owner")
        assert status == 200, body

    return put


def acquire(call, lic, uid, hw="hw", **claims):
    return call("acquire", {"license_key": lic.key, "hardware_id": hw}, uid=uid, **claims)


def test_excluded_users_and_machines_are_refused_with_the_rule_that_refused(call, make_license, set_policy):
    lic = make_license(seats=5)
    assert acquire(call, lic, "mallory")[0] == 201
    set_policy(lic.license_id, {"exclude": {"users": ["mallory@example.com"], "hardware": ["stolen-laptop"]}})
    # an edit takes effect at once: the holder's re-acquire ("silent re-acquire") is refused
    status, body, _ = acquire(call, lic, "mallory", email_verified=True)
    assert status == 403 and body["error"]["code"] == "FORBIDDEN" and body["error"]["rule"] == "excluded"
    status, body, _ = acquire(call, lic, "bob", hw="stolen-laptop")
    assert status == 403 and body["error"]["rule"] == "excluded"
    assert "mallory" not in json.dumps(body)  # nobody learns who else is named
    assert acquire(call, lic, "bob", hw="own-laptop")[0] == 201


def test_include_admits_only_its_groups_and_users(call, make_license, set_policy):
    lic = make_license(seats=5)
    set_policy(lic.license_id, {"groups": [{"name": "eng", "domains": ["acme.com"]},
                                           {"name": "ci", "claim": {"name": "groups", "value": "ci"}}],
                                "include": {"groups": ["eng", "ci"], "users": ["contractor-7"]}})
    refused = acquire(call, lic, "eve", email="eve@other.com", email_verified=True)
    assert refused[0] == 403 and refused[1]["error"]["rule"] == "not_included"
    unverified = acquire(call, lic, "ann", email="ann@acme.com", email_verified=False)
    assert unverified[0] == 403  # a domain admits only verified email
    assert acquire(call, lic, "ann", email="ann@acme.com", email_verified=True)[0] == 201
    assert acquire(call, lic, "runner-1", groups=["build", "ci"])[0] == 201  # a custom claim's list
    assert acquire(call, lic, "contractor-7")[0] == 201


def test_reserved_seats_wait_for_their_group(call, make_license, set_policy):
    lic = make_license(seats=3)
    set_policy(lic.license_id, {"groups": [{"name": "ci", "uids": ["ci-1"]}], "reserve": [{"group": "ci", "seats": 1}]})
    assert acquire(call, lic, "u1")[0] == 201 and acquire(call, lic, "u2")[0] == 201
    status, body, headers = acquire(call, lic, "u3")
    assert status == 409 and body["error"]["code"] == "NO_SEAT_AVAILABLE"
    assert body["error"]["seats"] == {"used": 2, "max": 3, "reserved_for_others": 1}
    assert "reserved for groups you are not in" in body["error"]["message"] and "Retry-After" in headers
    status, body, _ = acquire(call, lic, "ci-1")
    assert status == 201 and body["reserved_for"] == "ci" and body["overage"] is False


def test_a_groups_maximum_is_a_409_that_names_the_group(call, make_license, set_policy):
    lic = make_license(seats=5)
    set_policy(lic.license_id, {"groups": [{"name": "interns", "uids": ["i1", "i2"]}],
                                "max": [{"group": "interns", "seats": 1}]})
    assert acquire(call, lic, "i1")[0] == 201
    status, body, _ = acquire(call, lic, "i2")
    assert status == 409 and body["error"]["code"] == "GROUP_SEAT_LIMIT"
    assert body["error"]["group"] == {"name": "interns", "used": 1, "max": 1}


def test_overdraft_seats_are_marked_in_the_answer_the_token_and_the_audit_log(call, make_license, set_policy, rt):
    lic = make_license(seats=1)
    set_policy(lic.license_id, {"overdraft_seats": 1})
    first = acquire(call, lic, "u1")
    assert first[0] == 201 and first[1]["overage"] is False and _claims(first[1]["token"])["overage"] is False
    status, body, _ = acquire(call, lic, "u2")
    assert status == 201 and body["overage"] is True and body["seats"] == {"used": 2, "max": 1}
    assert _claims(body["token"])["overage"] is True
    heartbeat = call("heartbeat", {"session_id": body["session_id"]}, uid="u2")
    assert heartbeat[0] == 200 and heartbeat[1]["overage"] is True
    assert _claims(heartbeat[1]["token"])["overage"] is True
    refused = acquire(call, lic, "u3")
    assert refused[0] == 409 and "overdraft seat too" in refused[1]["error"]["message"]
    events = [e for e in rt.store.list_events(tenant_id=lic.tenant_id, license_id=lic.license_id, limit=20)
              if e.type == "overage"]
    assert len(events) == 1 and events[0].session_id == body["session_id"]
    assert rt.store.get_session(body["session_id"]).overage is True


def test_one_seat_licenses_speak_in_the_singular(call, make_license):
    lic = make_license(seats=1)
    assert acquire(call, lic, "u1")[0] == 201
    status, body, _ = acquire(call, lic, "u2")
    assert status == 409 and body["error"]["message"] == "the license's only seat is in use; try again later"


def test_the_wait_queue_over_http(call, make_license, set_policy):
    lic = make_license(seats=1)
    set_policy(lic.license_id, {"queue": {"max_length": 10, "claim_window_s": 30, "poll_interval_s": 5}})
    holder = acquire(call, lic, "u1")
    assert holder[0] == 201
    status, ticket, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw", "wait": True}, uid="u2")
    assert status == 202 and ticket["position"] == 1 and ticket["queue_length"] == 1
    assert ticket["poll_interval_s"] == 5 and ticket["claim_window_s"] == 30 and ticket["estimate_s"] is None
    poll = {"license_key": lic.key, "hardware_id": "hw", "ticket": ticket["ticket"]}
    assert call("acquire", poll, uid="u2")[0] == 202
    assert call("acquire", poll, uid="u3")[0] == 410  # another user's ticket is nobody's to poll
    newcomer = acquire(call, lic, "u4")
    assert newcomer[0] == 409 and newcomer[1]["error"]["seats"]["queued"] == 1  # one waits ahead
    assert "1 person waits in line for a seat before you" in newcomer[1]["error"]["message"]
    assert call("release", {"session_id": holder[1]["session_id"]}, uid="u1")[0] == 200
    newcomer = acquire(call, lic, "u4")
    assert newcomer[0] == 409 and newcomer[1]["error"]["seats"] == {"used": 1, "max": 1}  # held for u2
    status, body, _ = call("acquire", poll, uid="u2")
    assert status == 201 and body["session_id"]
    status, body, _ = call("acquire", poll, uid="u2")  # the ticket was used: the session is handed back
    assert status in (200, 410)


def test_leaving_the_queue_and_waiting_without_one(call, make_license, set_policy):
    lic = make_license(seats=1)
    assert acquire(call, lic, "u1")[0] == 201
    refused = call("acquire", {"license_key": lic.key, "hardware_id": "hw", "wait": True}, uid="u2")
    assert refused[0] == 409  # no queue on this license: wait changes nothing
    set_policy(lic.license_id, {"queue": {}})
    status, ticket, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw", "wait": True}, uid="u2")
    assert status == 202
    assert call("release", {"ticket": ticket["ticket"]}, uid="u3")[0] == 403
    assert call("release", {"ticket": ticket["ticket"]}, uid="u2")[1] == {"status": "left_queue"}
    assert call("release", {"ticket": ticket["ticket"]}, uid="u2")[1] == {"status": "not_queued"}
    assert call("release", {}, uid="u2")[0] == 400
    gone = call("acquire", {"license_key": lic.key, "hardware_id": "hw", "ticket": ticket["ticket"]}, uid="u2")
    assert gone[0] == 410 and gone[1]["error"]["code"] == "TICKET_GONE"


def test_usage_shows_overage_and_queue_waits_per_day(call, make_license, set_policy, admin_usage):
    lic = make_license(seats=1)
    set_policy(lic.license_id, {"overdraft_seats": 1, "queue": {"poll_interval_s": 5}})
    first, second = acquire(call, lic, "u1"), acquire(call, lic, "u2")
    assert second[1]["overage"] is True
    status, ticket, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw", "wait": True}, uid="u3")
    assert status == 202
    call("release", {"session_id": first[1]["session_id"]}, uid="u1")
    poll = {"license_key": lic.key, "hardware_id": "hw", "ticket": ticket["ticket"]}
    assert call("acquire", poll, uid="u3")[0] == 201
    [today] = admin_usage(lic.license_id)["days"][-1:]
    assert today["peak"] == 2 and today["overage"] == 1 and today["denials"] == 1 and today["queued"] == 1
    assert today["queue_wait_p50_s"] == today["queue_wait_p95_s"] == 1  # served within the first second


@pytest.fixture
def admin_usage(call):
    def usage(license_id: str) -> dict:
        status, body, _ = call("admin", method="GET", path=f"/licenses/{license_id}/usage", uid="vendor",
                               role="owner")
        assert status == 200, body
        return body

    return usage


def test_a_policy_edit_reaches_waiting_tickets_at_once(call, make_license, set_policy):
    lic = make_license(seats=1)
    set_policy(lic.license_id, {"queue": {"poll_interval_s": 5}})
    assert acquire(call, lic, "holder")[0] == 201
    waits = {}
    for uid in ("stays", "excluded"):
        status, body, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw", "wait": True}, uid=uid)
        assert status == 202
        waits[uid] = {"license_key": lic.key, "hardware_id": "hw", "ticket": body["ticket"]}
    set_policy(lic.license_id, {"queue": {"poll_interval_s": 5}, "exclude": {"users": ["excluded"]}})
    refused = call("acquire", waits["excluded"], uid="excluded")
    assert refused[0] == 403 and refused[1]["error"]["rule"] == "excluded"
    assert call("acquire", waits["stays"], uid="stays")[0] == 202
    set_policy(lic.license_id, {})  # the queue itself removed: its tickets are gone
    gone = call("acquire", waits["stays"], uid="stays")
    assert gone[0] == 410 and gone[1]["error"]["code"] == "TICKET_GONE"
