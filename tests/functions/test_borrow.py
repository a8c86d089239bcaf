"""Borrowing (check-out) and the signed offline grace."""

from __future__ import annotations

import time

import pytest

from lease_verifier import verify_lease_token


def _claims(call, token):
    jwks = call("jwks", method="GET", uid=None)[1]
    return verify_lease_token(token, jwks, now_s=int(time.time()))


def test_tokens_state_the_licenses_offline_grace_and_whether_they_are_borrowed(call, make_license):
    lic = make_license(offline_grace_s=900)
    token = call("acquire", {"license_key": lic.key, "hardware_id": "hw"})[1]["token"]
    claims = _claims(call, token)
    assert claims["grace"] == 900 and claims["bor"] is False


def test_a_borrowed_seat_is_held_without_heartbeats_until_it_ends(call, make_license, manual_clock, rt):
    lic = make_license(seats=1, lease_ttl_s=60, max_borrow_s=86_400)
    sid = call("acquire", {"license_key": lic.key, "hardware_id": "laptop"}, uid="traveller")[1]["session_id"]

    status, body, _ = call("borrow", {"session_id": sid, "duration_s": 3600}, uid="traveller")

    assert status == 200 and body["session_id"] == sid and body["borrowed_until"] == body["expires_at"]
    claims = _claims(call, body["token"])
    assert claims["bor"] is True and claims["exp"] - claims["iat"] in (3599, 3600)
    # a heartbeat early in the borrow does not shorten it to a normal 60 s lease
    manual_clock.advance(seconds=10)
    assert call("heartbeat", {"session_id": sid}, uid="traveller")[0] == 200
    manual_clock.advance(seconds=3589)  # then no heartbeat for the rest of the hour: still held
    assert call("acquire", {"license_key": lic.key, "hardware_id": "desk"}, uid="colleague")[0] == 409
    manual_clock.advance(seconds=1)
    assert call("acquire", {"license_key": lic.key, "hardware_id": "desk"}, uid="colleague")[0] == 201
    events = [e["type"] for e in rt.store.events_for_session(sid)]
    assert "borrow" in events


def test_returning_a_borrow_frees_the_seat_at_once(call, make_license, rt):
    lic = make_license(seats=1, max_borrow_s=600)
    sid = call("acquire", {"license_key": lic.key, "hardware_id": "laptop"}, uid="traveller")[1]["session_id"]
    call("borrow", {"session_id": sid, "duration_s": 600}, uid="traveller")

    status, body, _ = call("borrow", {"session_id": sid}, uid="traveller", path="/return")

    assert (status, body) == (200, {"status": "returned"})
    assert call("borrow", {"session_id": sid}, uid="traveller", path="/return")[1] == {"status": "already_released"}
    assert call("acquire", {"license_key": lic.key, "hardware_id": "desk"}, uid="colleague")[0] == 201
    assert rt.store.get_session(sid).end_reason == "returned"
    assert call("heartbeat", {"session_id": sid}, uid="traveller")[1]["error"]["message"].startswith("the borrowed seat was returned")


@pytest.mark.parametrize("max_borrow_s, duration_s, status, code", [
    (0, 60, 403, "BORROW_NOT_ALLOWED"),
    (600, 601, 400, "INVALID_REQUEST"),
])
def test_borrows_beyond_what_the_license_allows_are_refused(call, make_license, max_borrow_s, duration_s, status, code):
    lic = make_license(max_borrow_s=max_borrow_s)
    sid = call("acquire", {"license_key": lic.key, "hardware_id": "hw"})[1]["session_id"]
    answer_status, body, _ = call("borrow", {"session_id": sid, "duration_s": duration_s})
    assert answer_status == status and body["error"]["code"] == code


def test_only_the_holder_borrows_and_expired_sessions_cannot(call, make_license, manual_clock):
    lic = make_license(lease_ttl_s=60, max_borrow_s=600)
    sid = call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid="owner")[1]["session_id"]
    assert call("borrow", {"session_id": sid, "duration_s": 60}, uid="intruder")[0] == 403
    manual_clock.advance(seconds=61)
    assert call("borrow", {"session_id": sid, "duration_s": 60}, uid="owner")[0] == 410


def test_the_same_machine_re_acquiring_keeps_its_borrow(call, make_license):
    lic = make_license(lease_ttl_s=60, max_borrow_s=3600)
    body = {"license_key": lic.key, "hardware_id": "hw"}
    sid = call("acquire", body)[1]["session_id"]
    borrowed_until = call("borrow", {"session_id": sid, "duration_s": 3600})[1]["borrowed_until"]
    again = call("acquire", body)[1]
    assert again["session_id"] == sid and again["expires_at"] == borrowed_until
