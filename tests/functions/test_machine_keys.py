"""Machine keys and the CI pool through the functions (issue 14, part 8): a tenant admin
makes a named, revocable key scoped to licenses; the seat functions accept it in place of an
ID token; on a license with a CI pool machines hold pool seats only; the audit log names the
key; revocation holds within its bound; last use is recorded once a minute; a per-key limit.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest

from shared.domain import Limit
from shared.domain.machine_keys import REVOCATION_BOUND_S
from shared.runtime import Runtime, install_runtime
from shared.seats import LicenseKeys


@pytest.fixture
def admin(call):
    """admin("POST", "keys", body, tenant=...) -> (status, body) as the tenant's admin (owner without tenant)."""

    def invoke(method, path, body=None, *, tenant=None, uid="ops", role="admin", query=""):
        claims = {k: v for k, v in (("role", role), ("tenant", tenant)) if v}
        status, answer, _ = call("admin", body, method=method, path=f"/{path}{query}", uid=uid, **claims)
        return status, answer

    return invoke


def make_key(admin, lic, *licenses, mode="seat", name="nightly builds"):
    status, body = admin("POST", "keys", {"name": name, "licenses": [lic.license_id, *licenses], "mode": mode},
                         tenant=lic.tenant_id)
    assert status == 201, body
    return body["key"], body["api_key"]


def acquire(call, lic, token, hw="runner-1"):
    return call("acquire", {"license_key": lic.key, "hardware_id": hw}, token=token)


def test_a_key_is_shown_once_stored_hashed_and_listed_without_it(admin, make_license, rt):
    lic = make_license(seats=2)
    key, secret = make_key(admin, lic)
    assert secret.startswith("ck_") and key["id"].startswith("mk_") and key["uid"] == f"key:{key['id']}"
    assert (key["mode"], key["licenses"], key["created_by"], key["last_used_at"]) == ("seat", [lic.license_id],
                                                                                        "ops", None)
    status, listed = admin("GET", "keys", tenant=lic.tenant_id, query="?limit=500")
    assert status == 200 and key["id"] in [k["id"] for k in listed["keys"]] and secret not in str(listed)
    stored = rt.firestore._db.collection("machine_keys").document(key["id"]).get().to_dict()
    assert secret not in str(stored) and len(stored["key_hash"]) == 64
    events = rt.store.list_events(tenant_id=lic.tenant_id, license_id=None, limit=50)
    made = next(e for e in events if e.type == "key.create" and e.details["key_id"] == key["id"])
    assert made.actor == "ops" and made.details["key_name"] == "nightly builds"


def test_a_key_opens_the_seat_functions_for_its_licenses_only(admin, make_license, call, rt):
    lic, other = make_license(seats=2), make_license(seats=2)
    key, secret = make_key(admin, lic)
    status, body, _ = acquire(call, lic, secret)
    assert status == 201 and body["ci"] is False, body  # no pool on this license: an ordinary seat
    session = body["session_id"]
    assert call("heartbeat", {"session_id": session}, token=secret)[0] == 200
    assert call("validate", {"license_key": lic.key}, token=secret)[1]["seats"] == {"used": 1, "max": 2}
    refused = acquire(call, other, secret)
    assert refused[0] == 403 and "not for this license" in refused[1]["error"]["message"]
    assert call("validate", {"license_key": other.key}, token=secret)[0] == 403
    # a user cannot heartbeat the machine's session, nor pose as the machine
    assert call("heartbeat", {"session_id": session}, uid="someone")[0] == 403
    assert call("heartbeat", {"session_id": session}, uid=f"key:{key['id']}")[0] == 401
    assert call("release", {"session_id": session}, token=secret)[1] == {"status": "released"}
    # the audit log says which key acted
    events = {e["type"]: e for e in rt.store.events_for_session(session)}
    for kind in ("acquire", "release"):
        assert events[kind]["actor"] == f"key:{key['id']}" and events[kind]["details"]["key_name"] == "nightly builds"
    # administration takes no machine key
    status, body, _ = call("admin", method="GET", path="/keys", token=secret)
    assert status == 401 and "seat functions only" in body["error"]["message"]


def test_a_validate_key_validates_and_holds_nothing(admin, make_license, call):
    lic = make_license(seats=1)
    _, secret = make_key(admin, lic, mode="validate")
    status, body, _ = call("validate", {"license_key": lic.key}, token=secret)
    assert status == 200 and body["valid"] is True
    held = call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid="user")[1]["session_id"]
    for name, request in (("acquire", {"license_key": lic.key, "hardware_id": "hw"}),
                          ("heartbeat", {"session_id": held}), ("borrow", {"session_id": held, "duration_s": 60}),
                          ("release", {"session_id": held})):
        status, body, _ = call(name, request, token=secret)
        assert status == 403 and "may only validate" in body["error"]["message"], (name, body)
    assert call("heartbeat", {"session_id": held}, uid="user")[0] == 200  # the user's seat untouched


def _token_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_the_ci_pool_is_machines_only_and_machines_take_nothing_else(admin, make_license, call, rt):
    lic = make_license(seats=1, ci_seats=1)
    key, secret = make_key(admin, lic)
    status, body, _ = acquire(call, lic, secret)
    assert status == 201 and body["ci"] is True and body["seats"] == {"used": 1, "max": 1}, body
    assert _token_claims(body["token"])["ci"] is True  # the signed lease says so too
    user = call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid="dev")
    assert user[0] == 201 and "ci" not in _token_claims(user[1]["token"])  # the user's seat
    status, full, headers = acquire(call, lic, secret, hw="runner-2")
    assert status == 409 and full["error"]["pool"] == "ci" and full["error"]["seats"] == {"used": 1, "max": 1}
    assert "CI seat" in full["error"]["message"] and "Retry-After" in headers
    assert call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid="dev-2")[0] == 409
    validated = call("validate", {"license_key": lic.key}, token=secret)[1]
    assert validated["code"] == "NO_SEAT_AVAILABLE" and validated["ci_seats"] == {"used": 1, "max": 1}
    status, held = admin("GET", f"licenses/{lic.license_id}/sessions", tenant=lic.tenant_id)
    assert held["seats"] == {"used": 1, "max": 1} and held["ci_seats"] == {"used": 1, "max": 1}
    assert sorted(s["ci"] for s in held["sessions"]) == [False, True]
    assert admin("GET", f"licenses/{lic.license_id}", tenant=lic.tenant_id)[1]["ci_seats"] == {"used": 1, "max": 1}
    events = rt.store.events_for_session(body["session_id"])
    assert next(e for e in events if e["type"] == "acquire")["details"]["ci"] is True
    # the session record keeps the class, so a rebuild after a Redis loss puts it back in the pool
    rt.redis.delete(*LicenseKeys.of(lic.license_id).in_script_order())
    status, again, _ = call("acquire", {"license_key": lic.key, "hardware_id": "runner-1"}, token=secret)
    assert status == 200 and again["session_id"] == body["session_id"] and again["ci"] is True, again
    assert rt.seats.seat_use(lic.license_id, now_ms=rt.clock.now_ms()) == (1, 1)


def test_ci_seats_and_the_support_line_are_the_vendors(admin, make_license):
    lic = make_license(seats=1)
    for change in ({"ci_seats": 2}, {"support_contact": "call us"}):
        status, body = admin("PATCH", f"licenses/{lic.license_id}", change, tenant=lic.tenant_id)
        assert status == 403 and body["error"]["denied_fields"] == list(change), body
    status, body = admin("PATCH", f"licenses/{lic.license_id}", {"ci_seats": 2, "support_contact": "Acme IT x100"},
                         uid="vendor", role="owner")
    assert status == 200 and (body["license"]["ci_seats"], body["license"]["support_contact"]) == (2, "Acme IT x100")
    for bad in ("line\nbreak", "bell\x07", "   ", "x" * 201, "c1\x85"):
        status, body = admin("PATCH", f"licenses/{lic.license_id}", {"support_contact": bad}, uid="vendor",
                             role="owner")
        assert status == 400, (bad, body)
    status, body = admin("PATCH", f"licenses/{lic.license_id}", {"support_contact": None}, uid="vendor", role="owner")
    assert status == 200 and body["license"]["support_contact"] is None


def test_every_seat_refusal_carries_the_support_line(make_license, call, admin):
    lic = make_license(seats=1, support_contact="https://support.example.com/acme")
    support = "https://support.example.com/acme"
    held = call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid="a")[1]
    full = call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid="b")
    assert full[0] == 409 and full[1]["error"]["support"] == support
    assert call("heartbeat", {"session_id": held["session_id"]}, uid="b")[1]["error"]["support"] == support  # 403
    admin("DELETE", f"licenses/{lic.license_id}/sessions/{held['session_id']}", tenant=lic.tenant_id)
    gone = call("heartbeat", {"session_id": held["session_id"]}, uid="a")
    assert gone[0] == 410 and gone[1]["error"]["support"] == support
    admin("PATCH", f"licenses/{lic.license_id}", {"suspended": True}, tenant=lic.tenant_id)
    suspended = call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid="a")
    assert suspended[0] == 403 and suspended[1]["error"]["support"] == support
    assert "support" not in call("acquire", {"license_key": "CDT-0000", "hardware_id": "hw"}, uid="a")[1]["error"]


def test_a_revoked_key_is_refused_within_its_bound_and_its_seats_free_at_once(admin, make_license, call, rt,
                                                                              manual_clock):
    lic = make_license(seats=2, ci_seats=1)
    key, secret = make_key(admin, lic)
    held = acquire(call, lic, secret)[1]
    status, body = admin("DELETE", f"keys/{key['id']}", tenant=lic.tenant_id)
    assert status == 200 and body["status"] == "revoked" and body["sessions_ended"] == 1
    assert body["key"]["revoked_at"] is not None and f"{REVOCATION_BOUND_S} s" in body["notice"]
    assert call("heartbeat", {"session_id": held["session_id"]}, token=secret)[0] == 410  # its seat: freed now
    # an instance that read the key moments ago may serve it until the bound; not after
    manual_clock.advance(seconds=REVOCATION_BOUND_S + 1)
    status, refused, _ = acquire(call, lic, secret)
    assert status == 401 and "revoked" in refused["error"]["message"]
    # an instance that had not read it refuses at once
    install_runtime(Runtime(rt.settings, clock=manual_clock))
    assert acquire(call, lic, secret)[0] == 401
    assert admin("DELETE", f"keys/{key['id']}", tenant=lic.tenant_id)[1]["status"] == "already_revoked"


def test_last_use_is_recorded_once_a_minute_not_per_request(admin, make_license, call, manual_clock, rt):
    lic = make_license(seats=3)
    key, secret = make_key(admin, lic)

    def last_used():
        return rt.store.get_machine_key(key["id"]).last_used_ms

    assert call("validate", {"license_key": lic.key}, token=secret)[0] == 200
    first = last_used()
    assert first == manual_clock.now_ms()
    manual_clock.advance(seconds=20)
    for _ in range(5):
        assert call("validate", {"license_key": lic.key}, token=secret)[0] == 200
    assert last_used() == first
    manual_clock.advance(seconds=61)
    assert call("validate", {"license_key": lic.key}, token=secret)[0] == 200
    assert last_used() == manual_clock.now_ms()
    listed = {k["id"]: k for k in admin("GET", "keys", tenant=lic.tenant_id, query="?limit=500")[1]["keys"]}
    assert listed[key["id"]]["last_used_at"] is not None


def test_keys_are_rate_limited_per_key(admin, make_license, call, rt, manual_clock):
    lic = make_license(seats=3)
    _, greedy = make_key(admin, lic, name="greedy")
    _, polite = make_key(admin, lic, name="polite")
    install_runtime(Runtime(replace(rt.settings, rate_limit_machine_key=Limit(1, 2)), clock=manual_clock))
    try:
        answers = [call("validate", {"license_key": lic.key}, token=greedy)[0] for _ in range(3)]
        assert answers == [200, 200, 429]
        refused = call("validate", {"license_key": lic.key}, token=greedy)[1]
        assert refused["error"]["scope"] == "key"
        assert call("validate", {"license_key": lic.key}, token=polite)[0] == 200
    finally:
        install_runtime(rt)


def test_keys_are_the_tenants_own(admin, make_license, rt, tenant):
    other = f"{tenant}-b"
    if rt.store.get_tenant(other) is None:
        rt.provisioning.create_tenant("Other", tenant_id=other, actor="tests")
    mine, theirs = make_license(seats=1), make_license(seats=1, tenant_id=other)
    key, _ = make_key(admin, mine)
    # another tenant's admin: the key and the license are not there
    assert admin("DELETE", f"keys/{key['id']}", tenant=other)[0] == 404
    assert key["id"] not in [k["id"] for k in admin("GET", "keys", tenant=other, query="?limit=500")[1]["keys"]]
    status, body = admin("POST", "keys", {"name": "x", "licenses": [mine.license_id]}, tenant=other)
    assert status == 404
    # one key, one tenant (the owner may list licenses of any, but not of two at once)
    status, body = admin("POST", "keys", {"name": "x", "licenses": [mine.license_id, theirs.license_id]},
                         uid="vendor", role="owner")
    assert status == 400 and "one tenant" in body["error"]["message"]
    assert admin("POST", "keys", {"name": "x", "licenses": [mine.license_id]}, role=None)[0] == 403
    assert admin("DELETE", "keys/not-a-key", tenant=mine.tenant_id)[0] == 404
    status, body = admin("POST", "keys", {"name": "x", "licenses": [mine.license_id], "mode": "admin"},
                         tenant=mine.tenant_id)
    assert status == 400


def test_the_wait_queue_seen_and_trimmed_by_an_administrator(admin, make_license, call, rt):
    lic = make_license(seats=1)
    status, _ = admin("PATCH", f"licenses/{lic.license_id}", {"policy": {"queue": {"poll_interval_s": 5}}},
                      tenant=lic.tenant_id)
    assert status == 200
    assert call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid="holder")[0] == 201
    tickets = [call("acquire", {"license_key": lic.key, "hardware_id": f"hw-{i}", "wait": True}, uid=f"w{i}")[1]
               for i in range(2)]
    status, queue = admin("GET", f"licenses/{lic.license_id}/queue", tenant=lic.tenant_id)
    assert status == 200 and queue["queue"]["poll_interval_s"] == 5
    assert [(t["position"], t["uid"], t["hardware_id"], t["held_until"]) for t in queue["tickets"]] == [
        (1, "w0", "hw-0", None), (2, "w1", "hw-1", None)]
    first = tickets[0]["ticket"]
    status, removed = admin("DELETE", f"licenses/{lic.license_id}/queue/{first}", tenant=lic.tenant_id)
    assert status == 200 and removed == {"status": "removed", "ticket": first, "uid": "w0", "hardware_id": "hw-0"}
    poll = call("acquire", {"license_key": lic.key, "hardware_id": "hw-0", "ticket": first}, uid="w0")
    assert poll[0] == 410 and poll[1]["error"]["code"] == "TICKET_GONE"
    assert [t["uid"] for t in admin("GET", f"licenses/{lic.license_id}/queue", tenant=lic.tenant_id)[1]["tickets"]
            ] == ["w1"]
    assert admin("DELETE", f"licenses/{lic.license_id}/queue/{first}", tenant=lic.tenant_id)[1]["status"] == \
        "not_queued"
    other = make_license(seats=1)
    assert admin("DELETE", f"licenses/{other.license_id}/queue/{first}", tenant=lic.tenant_id)[0] == 404
    event = next(e for e in rt.store.list_events(tenant_id=lic.tenant_id, license_id=lic.license_id, limit=20)
                 if e.type == "queue.remove")
    assert event.actor == "ops" and event.details["ticket"] == first and event.details["uid"] == "w0"
