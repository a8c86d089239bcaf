"""The admin function: roles, tenant isolation on every route, lifecycle with its audit log."""

from __future__ import annotations

import pytest


def new_license(admin_api, tenant, **fields):
    """A license sold to `tenant` (only the owner, the vendor, creates licenses)."""
    body = {"tenant": tenant, "max_seats": 2, "tier": "pro", "features": ["build"], **fields}
    status, answer = admin_api("POST", "licenses", body, role="owner", uid="vendor")
    assert status == 201, answer
    return answer["license"]["id"], answer["license_key"]


def event_types(admin_api, tenant, license_id):
    status, body = admin_api("GET", "events", tenant=tenant, query={"license": license_id})
    assert status == 200
    return [e["type"] for e in body["events"]]


# -- who may ------------------------------------------------------------------------------

def test_only_the_owner_manages_tenants(admin_api, tenants):
    assert admin_api("POST", "tenants", {"name": "x"}, tenant=tenants[0])[0] == 403
    assert admin_api("GET", "tenants", tenant=tenants[0])[0] == 403
    assert admin_api("GET", "tenants", role=None)[0] == 403
    status, body = admin_api("GET", "tenants", role="owner", query={"limit": "500"})
    assert status == 200 and set(tenants) <= {t["id"] for t in body["tenants"]}


def test_a_taken_tenant_id_is_409_not_a_crash(admin_api, tenants):
    status, body = admin_api("POST", "tenants", {"id": tenants[0], "name": "again"}, role="owner")
    assert status == 409 and body["error"]["code"] == "ALREADY_EXISTS"


def test_the_key_is_shown_once_and_never_stored_in_clear(admin_api, tenants, rt):
    license_id, key = new_license(admin_api, tenants[0])
    status, body = admin_api("GET", f"licenses/{license_id}", tenant=tenants[0])
    assert status == 200 and key not in str(body) and "key" not in str(body["license"])
    stored = rt.firestore._db.collection("licenses").document(license_id).get().to_dict()
    assert key not in str(stored)


ROUTES = [
    ("GET", "licenses/{lic}", None),
    ("PATCH", "licenses/{lic}", {"max_seats": 5}),
    ("DELETE", "licenses/{lic}", None),
    ("GET", "licenses/{lic}/sessions", None),
    ("GET", "licenses/{lic}/usage", None),
    ("DELETE", "licenses/{lic}/sessions/{sid}", None),
    ("GET", "licenses/{lic}/queue", None),
    ("DELETE", "licenses/{lic}/queue/{ticket}", None),
    ("POST", "keys", {"name": "ci", "licenses": ["{lic}"]}),
    ("DELETE", "keys/{key}", None),
    ("GET", "events", "license"),
]


def _keys_of(admin_api, tenant):
    status, body = admin_api("GET", "keys", tenant=tenant, query={"limit": "500"})
    assert status == 200
    return [(k["id"], k["revoked_at"]) for k in body["keys"]]


@pytest.mark.parametrize("method, template, body", ROUTES, ids=[f"{m} {t}" for m, t, _ in ROUTES])
def test_cross_tenant_matrix(admin_api, tenants, call, method, template, body):
    a, b = tenants
    license_id, key = new_license(admin_api, a)
    session_id = call("acquire", {"license_key": key, "hardware_id": "hw"}, uid="holder")[1]["session_id"]
    status, made = admin_api("POST", "keys", {"name": "runner", "licenses": [license_id]}, tenant=a)
    assert status == 201
    ids = {"lic": license_id, "sid": session_id, "ticket": f"{license_id}.q.{'a' * 22}", "key": made["key"]["id"]}
    path = template.format(**ids)
    query = {"license": license_id} if body == "license" else None
    body = None if body == "license" else body
    if isinstance(body, dict):
        body = {k: [v.format(**ids) for v in value] if isinstance(value, list) else value for k, value in body.items()}
    keys_before = _keys_of(admin_api, a)

    other_admin = admin_api(method, path, body, tenant=b, uid="admin-b", query=query)
    end_user = admin_api(method, path, body, role=None, uid="holder", query=query)
    nobody = admin_api(method, path, body, token=False, query=query)

    assert other_admin[0] == 404 and other_admin[1]["error"]["code"] == "NOT_FOUND"
    assert end_user[0] == 403 and end_user[1]["error"]["code"] == "FORBIDDEN"
    assert nobody[0] == 401
    # and nothing changed: the license, its seat and its holder are as they were
    status, still = admin_api("GET", f"licenses/{license_id}/sessions", tenant=a)
    assert status == 200 and [s["session_id"] for s in still["sessions"]] == [session_id]
    assert admin_api("GET", f"licenses/{license_id}", tenant=a)[1]["license"]["max_seats"] == 2
    assert _keys_of(admin_api, a) == keys_before  # no key made, none revoked


def test_listings_show_only_the_callers_tenant(admin_api, tenants):
    a, b = tenants
    mine, _ = new_license(admin_api, a)
    theirs, _ = new_license(admin_api, b)
    listed = {lic["id"] for lic in admin_api("GET", "licenses", tenant=a, query={"limit": "500"})[1]["licenses"]}
    assert mine in listed and theirs not in listed
    assert admin_api("GET", "licenses", tenant=a, query={"tenant": b})[1]["licenses"] == []
    events = admin_api("GET", "events", tenant=a)[1]["events"]
    assert events and {e["tenant"] for e in events} == {a}


def test_an_admin_cannot_create_licenses_in_its_tenant_or_another(admin_api, tenants):
    a, b = tenants
    for body in ({"tenant": b, "max_seats": 1, "tier": "pro"}, {"tenant": a, "max_seats": 1000, "tier": "pro"},
                 {"max_seats": 1000, "tier": "pro"}):
        status, answer = admin_api("POST", "licenses", body, tenant=a)
        assert status == 403 and "only the platform owner" in answer["error"]["message"]
    assert admin_api("GET", "licenses", tenant=a)[1]["licenses"] == []


def test_listing_pages_by_id(admin_api, tenants):
    ids = sorted(new_license(admin_api, tenants[0])[0] for _ in range(3))
    first = admin_api("GET", "licenses", tenant=tenants[0], query={"limit": "2"})[1]
    second = admin_api("GET", "licenses", tenant=tenants[0], query={"limit": "2", "after": first["next_after"]})[1]
    assert [lic["id"] for lic in first["licenses"]] + [lic["id"] for lic in second["licenses"]] == ids


@pytest.mark.parametrize("body, field", [
    ({"max_seats": 0, "tier": "pro"}, "max_seats"),
    ({"max_seats": "3", "tier": "pro"}, "max_seats"),
    ({"max_seats": 3}, "tier"),
    ({"max_seats": 3, "tier": "pro", "colour": "red"}, "colour"),
])
def test_bad_license_bodies_are_400(admin_api, tenants, body, field):
    status, answer = admin_api("POST", "licenses", body, tenant=tenants[0])
    assert status == 400 and field in [f["field"] for f in answer["error"]["fields"]]


def test_bad_times_and_domains_are_400(admin_api, tenants):
    base = {"tenant": tenants[0], "max_seats": 1, "tier": "pro"}
    assert admin_api("POST", "licenses", {**base, "expires_at": "tomorrow"}, role="owner")[0] == 400
    assert admin_api("POST", "licenses", {**base, "allowed_domains": ["not a domain"]}, role="owner")[0] == 400
    license_id, _ = new_license(admin_api, tenants[0])
    assert admin_api("PATCH", f"licenses/{license_id}", {}, tenant=tenants[0])[0] == 400
    assert admin_api("PATCH", f"licenses/{license_id}", {"max_seats": None}, tenant=tenants[0])[0] == 400


# -- a license's life ---------------------------------------------------------------------

def test_license_lifecycle_with_its_audit_log(admin_api, tenants, call):
    tenant = tenants[0]
    license_id, key = new_license(admin_api, tenant, max_seats=3)
    assert event_types(admin_api, tenant, license_id) == ["license.create"]

    holders = [call("acquire", {"license_key": key, "hardware_id": f"hw-{i}"}, uid=f"user-{i}")[1]["session_id"]
               for i in range(3)]

    # the vendor reduces seats below use: nobody is evicted, the answer says so, new grants wait
    status, body = admin_api("PATCH", f"licenses/{license_id}", {"max_seats": 1}, role="owner", uid="vendor")
    assert status == 200 and body["seats"] == {"used": 3, "max": 1} and "nobody is evicted" in body["notice"]
    assert all(call("heartbeat", {"session_id": sid}, uid=f"user-{i}")[0] == 200 for i, sid in enumerate(holders))
    assert call("acquire", {"license_key": key, "hardware_id": "new"}, uid="newcomer")[0] == 409
    update = admin_api("GET", "events", tenant=tenant, query={"license": license_id})[1]["events"][0]
    assert update["type"] == "license.update" and update["actor"] == "vendor" and update["at"].endswith("Z")
    assert update["details"]["changes"] == {"max_seats": {"before": 3, "after": 1}}

    # the tenant's admin suspends: no new seat, no heartbeat
    assert admin_api("PATCH", f"licenses/{license_id}", {"suspended": True}, tenant=tenant)[0] == 200
    assert call("acquire", {"license_key": key, "hardware_id": "hw-0"}, uid="user-0")[1]["error"]["code"] == "LICENSE_SUSPENDED"
    assert call("heartbeat", {"session_id": holders[0]}, uid="user-0")[0] == 403
    # resume (the admin) and more seats (the vendor)
    assert admin_api("PATCH", f"licenses/{license_id}", {"suspended": False}, tenant=tenant)[0] == 200
    assert admin_api("PATCH", f"licenses/{license_id}", {"max_seats": 5}, role="owner", uid="vendor")[0] == 200
    assert call("acquire", {"license_key": key, "hardware_id": "new"}, uid="newcomer")[0] == 201

    # revoke (the vendor): the key opens nothing, every holder's next heartbeat is 410
    assert admin_api("DELETE", f"licenses/{license_id}", tenant=tenant)[0] == 403
    status, body = admin_api("DELETE", f"licenses/{license_id}", role="owner", uid="vendor")
    assert status == 200 and body["status"] == "revoked" and body["sessions_ended"] == 4
    assert call("acquire", {"license_key": key, "hardware_id": "hw-9"}, uid="user-9")[0] == 404
    assert call("validate", {"license_key": key}, uid="user-9")[0] == 404
    assert call("heartbeat", {"session_id": holders[1]}, uid="user-1")[1]["error"]["code"] == "SESSION_EXPIRED"
    again = admin_api("DELETE", f"licenses/{license_id}", role="owner", uid="vendor")[1]
    assert (again["status"], again["sessions_ended"]) == ("already_revoked", 0)

    types = event_types(admin_api, tenant, license_id)
    assert types.count("license.update") == 4 and types.count("acquire") == 4 and types.count("revoke") == 4
    assert types[-1] == "license.create" and "license.revoke" in types


def test_force_release_frees_the_seat_at_once_and_the_holder_learns_it(admin_api, tenants, call, rt):
    tenant = tenants[0]
    license_id, key = new_license(admin_api, tenant, max_seats=1)
    stuck = call("acquire", {"license_key": key, "hardware_id": "stuck-box"}, uid="away")[1]["session_id"]
    assert call("acquire", {"license_key": key, "hardware_id": "my-box"}, uid="waiting")[0] == 409

    sessions = admin_api("GET", f"licenses/{license_id}/sessions", tenant=tenant)[1]["sessions"]
    assert [(s["session_id"], s["uid"], s["hardware_id"]) for s in sessions] == [(stuck, "away", "stuck-box")]
    status, body = admin_api("DELETE", f"licenses/{license_id}/sessions/{stuck}", tenant=tenant)

    assert status == 200 and body["status"] == "released"
    assert call("acquire", {"license_key": key, "hardware_id": "my-box"}, uid="waiting")[0] == 201
    answer = call("heartbeat", {"session_id": stuck}, uid="away")
    assert answer[0] == 410 and "administrator" in answer[1]["error"]["message"]
    record = rt.store.get_session(stuck)
    assert record.end_reason == "forced"
    assert event_types(admin_api, tenant, license_id)[:1] == ["acquire"]  # newest first: the waiting user's
    assert "force-release" in event_types(admin_api, tenant, license_id)
    assert admin_api("DELETE", f"licenses/{license_id}/sessions/{stuck}", tenant=tenant)[1] == {"status": "already_released"}
    unknown = f"{license_id}.AAAAAAAAAAAAAAAAAAAAAA"
    assert admin_api("DELETE", f"licenses/{license_id}/sessions/{unknown}", tenant=tenant)[0] == 404


def test_holders_show_user_e_mail_hardware_client_and_the_seat_class(admin_api, tenants, call):
    tenant = tenants[0]
    license_id, key = new_license(admin_api, tenant, max_seats=1)
    owner_patch = {"policy": {"overdraft_seats": 1}}
    assert admin_api("PATCH", f"licenses/{license_id}", owner_patch, role="owner", uid="root")[0] == 200
    call("acquire", {"license_key": key, "hardware_id": "box-1", "client": {"hostname": "ws-17", "version": "4.2.0"}},
         uid="ann", email="ann@example.com")
    call("acquire", {"license_key": key, "hardware_id": "box-2"}, uid="bob", email="bob@example.com")
    sessions = admin_api("GET", f"licenses/{license_id}/sessions", tenant=tenant)[1]["sessions"]
    assert [(s["uid"], s["email"], s["hardware_id"], s["client"], s["overage"]) for s in sessions] == [
        ("ann", "ann@example.com", "box-1", {"hostname": "ws-17", "version": "4.2.0"}, False),
        ("bob", "bob@example.com", "box-2", {"hostname": None, "version": None}, True)]
    assert all(s["last_heartbeat_at"] and s["since"] and s["borrowed_until"] is None for s in sessions)


def test_usage_reports_seats_now_and_daily_peak_and_denials(admin_api, tenants, call, rt):
    from shared.domain.times import rfc3339

    tenant = tenants[0]
    license_id, key = new_license(admin_api, tenant, max_seats=2)
    for i in range(2):
        call("acquire", {"license_key": key, "hardware_id": f"hw-{i}"}, uid=f"u{i}")
    for i in range(3):
        assert call("acquire", {"license_key": key, "hardware_id": "late"}, uid=f"late-{i}")[0] == 409

    status, body = admin_api("GET", f"licenses/{license_id}/usage", tenant=tenant, query={"days": "7"})

    today = rfc3339(rt.clock.now_ms())[:10]
    assert status == 200 and body["seats"] == {"used": 2, "max": 2}
    quiet = {"peak": 0, "denials": 0, "overage": 0, "queued": 0}
    assert len(body["days"]) == 7 and body["days"][-1] == {"date": today, **quiet, "peak": 2, "denials": 3}
    assert all(day == {"date": day["date"], **quiet} for day in body["days"][:-1])
    assert admin_api("GET", f"licenses/{license_id}/usage", tenant=tenant, query={"days": "0"})[0] == 400


# -- roles: the vendor's entitlements and the customer's administration ---------------------

ENTITLEMENT_CHANGES = {
    "max_seats": 500, "tier": "enterprise", "features": ["build", "everything"], "expires_at": None,
    "lease_ttl_s": 900, "heartbeat_interval_s": 30, "offline_grace_s": 86_400, "max_borrow_s": 86_400,
}


@pytest.mark.parametrize("field", sorted(ENTITLEMENT_CHANGES))
def test_only_the_owner_changes_an_entitlement(admin_api, tenants, field):
    tenant = tenants[0]
    license_id, _ = new_license(admin_api, tenant, expires_at="2030-01-01T00:00:00Z")
    change = {field: ENTITLEMENT_CHANGES[field]}
    before = admin_api("GET", f"licenses/{license_id}", tenant=tenant)[1]["license"]

    status, answer = admin_api("PATCH", f"licenses/{license_id}", change, tenant=tenant)
    assert status == 403 and field in answer["error"]["message"] and answer["error"]["denied_fields"] == [field]
    assert admin_api("PATCH", f"licenses/{license_id}", change, role=None, uid="user-x")[0] == 403
    assert admin_api("GET", f"licenses/{license_id}", tenant=tenant)[1]["license"] == before  # nothing changed

    status, answer = admin_api("PATCH", f"licenses/{license_id}", change, role="owner", uid="vendor")
    assert status == 200 and answer["license"][field] == ENTITLEMENT_CHANGES[field]


def test_a_tenant_admin_sets_restrictions_and_suspends_within_what_it_bought(admin_api, tenants):
    tenant = tenants[0]
    license_id, _ = new_license(admin_api, tenant)
    restrictions = {"allowed_domains": ["acme.com"], "max_sessions_per_user": 1, "revive_window_s": 60,
                    "suspended": True}
    status, answer = admin_api("PATCH", f"licenses/{license_id}", restrictions, tenant=tenant)
    assert status == 200 and answer["license"]["suspended_by"] == "admin"
    assert admin_api("PATCH", f"licenses/{license_id}", {"suspended": False}, tenant=tenant)[0] == 200
    # resending an entitlement unchanged is no attempt to change it
    assert admin_api("PATCH", f"licenses/{license_id}", {"max_seats": 2, "revive_window_s": 0}, tenant=tenant)[0] == 200


def test_a_license_the_vendor_suspended_is_resumed_only_by_the_vendor(admin_api, tenants, call):
    tenant = tenants[0]
    license_id, key = new_license(admin_api, tenant)
    assert admin_api("PATCH", f"licenses/{license_id}", {"suspended": True}, role="owner", uid="vendor")[0] == 200
    status, answer = admin_api("PATCH", f"licenses/{license_id}", {"suspended": False}, tenant=tenant)
    assert status == 403 and "only the platform owner resumes it" in answer["error"]["message"]
    assert call("acquire", {"license_key": key, "hardware_id": "hw"})[1]["error"]["code"] == "LICENSE_SUSPENDED"
    assert admin_api("PATCH", f"licenses/{license_id}", {"suspended": False}, role="owner", uid="vendor")[0] == 200
    assert call("acquire", {"license_key": key, "hardware_id": "hw"})[0] == 201


MALFORMED_TENANT_CLAIMS = [None, "", ["acme"], 7, {"id": "acme"}, "ab/cd", "UPPER", "acme\n"]


@pytest.mark.parametrize("claim", MALFORMED_TENANT_CLAIMS, ids=repr)
def test_an_admin_claim_without_a_usable_tenant_administers_nothing(admin_api, tenants, id_token, claim):
    license_id, _ = new_license(admin_api, tenants[0])
    claims = {"role": "admin"} if claim is None else {"role": "admin", "tenant": claim}
    token = id_token("admin-nowhere", **claims)
    for method, path, query in [("GET", "licenses", None), ("GET", "events", None), ("GET", "tenants", None),
                                ("GET", f"licenses/{license_id}", None), ("GET", "events", {"license": license_id}),
                                ("GET", "licenses", {"tenant": tenants[0]})]:
        status, answer = admin_api(method, path, token=token, query=query)
        assert status == 403, (method, path, answer)
    status, answer = admin_api("GET", "licenses", token=token)
    assert "valid tenant claim" in answer["error"]["message"]


@pytest.mark.parametrize("query", [{"tenant": "ab/cd"}, {"after": "x/y"}, {"tenant": "acme\n"}])
def test_malformed_ids_in_listings_are_400(admin_api, tenants, query):
    status, answer = admin_api("GET", "licenses", role="owner", query=query)
    assert status == 400 and [f["field"] for f in answer["error"]["fields"]] == list(query)


def test_tenant_names_hold_no_control_characters(admin_api):
    status, answer = admin_api("POST", "tenants", {"name": "Acme\x1b]0;pwned\x07"}, role="owner")
    assert status == 400 and answer["error"]["fields"][0]["field"] == "name"


@pytest.mark.parametrize("body", [{"tenant": "ab/cd", "max_seats": 1, "tier": "pro"},
                                  {"tenant": "x" * 3 + "/", "max_seats": 1, "tier": "pro"}])
def test_a_malformed_tenant_id_from_the_owner_is_400_not_500(admin_api, body):
    assert admin_api("POST", "licenses", body, role="owner")[0] == 400
    assert admin_api("POST", "tenants", {"id": body["tenant"], "name": "x"}, role="owner")[0] == 400


# -- revocation is final ------------------------------------------------------------------

def test_a_revoked_license_signs_nothing_more_heartbeat_borrow_or_revive(admin_api, tenants, call, manual_clock):
    tenant = tenants[0]
    license_id, key = new_license(admin_api, tenant, lease_ttl_s=60, revive_window_s=3600, max_borrow_s=3600)
    lapsed = call("acquire", {"license_key": key, "hardware_id": "hw-1"}, uid="u1")[1]["session_id"]
    manual_clock.advance(seconds=61)  # lapsed, but inside its revive window
    live = call("acquire", {"license_key": key, "hardware_id": "hw-2"}, uid="u2")[1]["session_id"]

    assert admin_api("DELETE", f"licenses/{license_id}", role="owner", uid="vendor")[1]["status"] == "revoked"

    for sid, uid in ((lapsed, "u1"), (live, "u2")):
        status, answer, _ = call("heartbeat", {"session_id": sid}, uid=uid)
        assert status == 410 and "token" not in answer, answer
        status, answer, _ = call("borrow", {"session_id": sid, "duration_s": 600}, uid=uid)
        assert status == 410 and "token" not in answer, answer


def test_a_repeated_revoke_ends_what_is_still_live(admin_api, tenants, call, rt):
    tenant = tenants[0]
    license_id, key = new_license(admin_api, tenant)
    assert admin_api("DELETE", f"licenses/{license_id}", role="owner", uid="vendor")[1]["status"] == "revoked"
    # a grant that raced the revocation into Redis (its script ran on the old generation)
    rt.seats.restore(license_id, [], now_ms=rt.clock.now_ms(), ttl_ms=60_000, complete=True)  # a trusted table
    straggler = rt.seats.acquire(license_id, generation=rt.seats.generation(license_id), now_ms=rt.clock.now_ms(),
                                 ttl_ms=60_000, max_seats=2, uid="late", hardware_id="hw",
                                 new_session_id=rt.ids.session_id(license_id))
    assert straggler.kind == "GRANTED"

    status, answer = admin_api("DELETE", f"licenses/{license_id}", role="owner", uid="vendor")

    assert (status, answer["status"], answer["sessions_ended"]) == (200, "already_revoked", 1)
    assert rt.seats.live_count(license_id, now_ms=rt.clock.now_ms()) == 0


# -- a borrowed seat stays counted while its token is usable offline --------------------------

def test_force_releasing_a_borrow_keeps_its_seat_counted_until_the_token_lapses(admin_api, tenants, call,
                                                                                manual_clock):
    tenant = tenants[0]
    license_id, key = new_license(admin_api, tenant, max_seats=1, lease_ttl_s=60, max_borrow_s=3600,
                                  offline_grace_s=300)
    sid = call("acquire", {"license_key": key, "hardware_id": "laptop"}, uid="traveller")[1]["session_id"]
    borrowed = call("borrow", {"session_id": sid, "duration_s": 3600}, uid="traveller")[1]
    holders = admin_api("GET", f"licenses/{license_id}/sessions", tenant=tenant)[1]["sessions"]
    assert holders[0]["state"] == "borrowed" and holders[0]["borrowed_until"] == borrowed["borrowed_until"]

    status, answer = admin_api("DELETE", f"licenses/{license_id}/sessions/{sid}", tenant=tenant)

    assert status == 200 and answer["status"] == "released"
    from shared.domain.times import parse_rfc3339, rfc3339
    counted_until = parse_rfc3339(borrowed["borrowed_until"]) + 300_000
    assert answer["seat_counted_until"] == rfc3339(counted_until) and "because it was borrowed" in answer["notice"]
    assert call("heartbeat", {"session_id": sid}, uid="traveller")[0] == 410
    [held] = admin_api("GET", f"licenses/{license_id}/sessions", tenant=tenant)[1]["sessions"]
    assert (held["session_id"], held["state"], held["expires_at"]) == (sid, "held", rfc3339(counted_until))
    # borrow, force-release, borrow again no longer multiplies offline seats
    assert call("acquire", {"license_key": key, "hardware_id": "laptop"}, uid="traveller")[0] == 409
    assert call("acquire", {"license_key": key, "hardware_id": "desk"}, uid="colleague")[0] == 409
    manual_clock.advance(ms=counted_until - manual_clock.now_ms() - 1)
    assert call("acquire", {"license_key": key, "hardware_id": "desk"}, uid="colleague")[0] == 409
    manual_clock.advance(ms=1)
    assert call("acquire", {"license_key": key, "hardware_id": "desk"}, uid="colleague")[0] == 201


def test_force_releasing_a_lease_that_was_never_borrowed_frees_the_seat_at_once(admin_api, tenants, call):
    tenant = tenants[0]
    license_id, key = new_license(admin_api, tenant, max_seats=1, offline_grace_s=300)
    sid = call("acquire", {"license_key": key, "hardware_id": "box"}, uid="u")[1]["session_id"]
    answer = admin_api("DELETE", f"licenses/{license_id}/sessions/{sid}", tenant=tenant)[1]
    assert answer["seat_counted_until"] is None and "notice" not in answer
    assert call("acquire", {"license_key": key, "hardware_id": "other"}, uid="v")[0] == 201


def test_the_audit_log_filters_by_license_type_actor_and_time_and_pages_on(world):
    lic, key = world.license(seats=5)
    other, other_key = world.license(seats=5)
    for uid in ("ann", "bob", "ann"):
        world.acquire(key, uid=uid, hw=f"{uid}-{world.clock.now_ms()}")
        world.clock.advance(seconds=60)
    middle = world.clock.now_ms()
    world.acquire(other_key, uid="ann", hw="elsewhere")

    def events(**query):
        answer = world.admin("GET", "events", tenant=world.tenant, query={k: str(v) for k, v in query.items()})
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    acquires = events(license=lic.id, type="acquire")["events"]
    assert [e["actor"] for e in acquires] == ["ann", "bob", "ann"]  # newest first
    assert [e["license"] for e in events(type="acquire", actor="ann")["events"]] == [other.id, lic.id, lic.id]
    from shared.domain.times import rfc3339

    assert [e["license"] for e in events(type="acquire", **{"from": rfc3339(middle)})["events"]] == [other.id]
    assert len(events(type="acquire", to=rfc3339(middle))["events"]) == 3
    # a page at a time, each after the last of the one before, none twice, none lost
    seen, after = [], None
    while True:
        page = events(limit=2, **({"after": after} if after else {}))
        seen += [e["id"] for e in page["events"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == [e["id"] for e in events(limit=100)["events"]] and len(seen) == len(set(seen)) >= 6
    # bad input is 400 and names it; another tenant's event is no cursor
    for bad in ({"type": "Acquire!"}, {"from": "yesterday"}, {"after": "a/b"}, {"limit": "0"}):
        assert world.admin("GET", "events", tenant=world.tenant, query=bad).status_code == 400, bad
    stranger = world.admin("GET", "events", tenant="stranger-tenant", query={"after": seen[0]})
    assert stranger.status_code == 400 and stranger.get_json()["error"]["field"] == "after"
    owner_all = world.admin("GET", "events", role="owner", uid="vendor", query={"type": "acquire"})
    assert owner_all.status_code == 400  # across every tenant: no type or actor filter
    assert world.admin("GET", "events", role="owner", uid="vendor", query={"limit": "3"}).status_code == 200
