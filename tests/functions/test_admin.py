"""The admin function: roles, tenant isolation on every route, lifecycle with its audit log."""

from __future__ import annotations

import secrets

import pytest


@pytest.fixture
def admin_api(function_clients, id_token):
    """admin_api("GET", "licenses/x", role="admin", tenant="t") -> (status, json)."""

    def call(method, path, body=None, *, uid="admin-1", role="admin", tenant=None, token=None, query=None):
        headers = {}
        if token is not False:
            claims = {k: v for k, v in {"role": role, "tenant": tenant}.items() if v}
            headers["Authorization"] = f"Bearer {token or id_token(uid, **claims)}"
        kwargs = {"json": body} if body is not None else {}
        response = function_clients["admin"].open("/" + path, method=method, headers=headers,
                                                   query_string=query or {}, **kwargs)
        return response.status_code, response.get_json(silent=True)

    return call


@pytest.fixture
def tenants(admin_api):
    """Two fresh tenants, created by the owner."""
    ids = [f"ten-{secrets.token_hex(3)}" for _ in range(2)]
    for tenant_id in ids:
        status, body = admin_api("POST", "tenants", {"id": tenant_id, "name": f"Tenant {tenant_id}"}, role="owner", uid="root")
        assert status == 201 and body["id"] == tenant_id
    return ids


def new_license(admin_api, tenant, **fields):
    body = {"max_seats": 2, "tier": "pro", "features": ["build"], **fields}
    status, answer = admin_api("POST", "licenses", body, tenant=tenant)
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
    stored = rt.store._db.collection("licenses").document(license_id).get().to_dict()
    assert key not in str(stored)


ROUTES = [
    ("GET", "licenses/{lic}", None),
    ("PATCH", "licenses/{lic}", {"max_seats": 5}),
    ("DELETE", "licenses/{lic}", None),
    ("GET", "licenses/{lic}/sessions", None),
    ("GET", "licenses/{lic}/usage", None),
    ("DELETE", "licenses/{lic}/sessions/{sid}", None),
    ("GET", "events", "license"),
]


@pytest.mark.parametrize("method, template, body", ROUTES, ids=[f"{m} {t}" for m, t, _ in ROUTES])
def test_cross_tenant_matrix(admin_api, tenants, call, method, template, body):
    a, b = tenants
    license_id, key = new_license(admin_api, a)
    session_id = call("acquire", {"license_key": key, "hardware_id": "hw"}, uid="holder")[1]["session_id"]
    path = template.format(lic=license_id, sid=session_id)
    query = {"license": license_id} if body == "license" else None
    body = None if body == "license" else body

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


def test_listings_show_only_the_callers_tenant(admin_api, tenants):
    a, b = tenants
    mine, _ = new_license(admin_api, a)
    theirs, _ = new_license(admin_api, b)
    listed = {lic["id"] for lic in admin_api("GET", "licenses", tenant=a, query={"limit": "500"})[1]["licenses"]}
    assert mine in listed and theirs not in listed
    assert admin_api("GET", "licenses", tenant=a, query={"tenant": b})[1]["licenses"] == []
    events = admin_api("GET", "events", tenant=a)[1]["events"]
    assert events and {e["tenant"] for e in events} == {a}


def test_an_admin_cannot_create_in_another_tenant(admin_api, tenants):
    a, b = tenants
    status, body = admin_api("POST", "licenses", {"tenant": b, "max_seats": 1, "tier": "pro"}, tenant=a)
    assert status == 404


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
    base = {"max_seats": 1, "tier": "pro"}
    assert admin_api("POST", "licenses", {**base, "expires_at": "tomorrow"}, tenant=tenants[0])[0] == 400
    assert admin_api("POST", "licenses", {**base, "allowed_domains": ["not a domain"]}, tenant=tenants[0])[0] == 400
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

    # reduce seats below use: nobody is evicted, the answer says so, new grants wait
    status, body = admin_api("PATCH", f"licenses/{license_id}", {"max_seats": 1}, tenant=tenant)
    assert status == 200 and body["seats"] == {"used": 3, "max": 1} and "nobody is evicted" in body["notice"]
    assert all(call("heartbeat", {"session_id": sid}, uid=f"user-{i}")[0] == 200 for i, sid in enumerate(holders))
    assert call("acquire", {"license_key": key, "hardware_id": "new"}, uid="newcomer")[0] == 409
    update = admin_api("GET", "events", tenant=tenant, query={"license": license_id})[1]["events"][0]
    assert update["type"] == "license.update" and update["actor"] == "admin-1" and update["at"].endswith("Z")
    assert update["details"]["changes"] == {"max_seats": {"before": 3, "after": 1}}

    # suspend: no new seat, no heartbeat
    assert admin_api("PATCH", f"licenses/{license_id}", {"suspended": True}, tenant=tenant)[0] == 200
    assert call("acquire", {"license_key": key, "hardware_id": "hw-0"}, uid="user-0")[1]["error"]["code"] == "LICENSE_SUSPENDED"
    assert call("heartbeat", {"session_id": holders[0]}, uid="user-0")[0] == 403
    # resume
    assert admin_api("PATCH", f"licenses/{license_id}", {"suspended": False, "max_seats": 5}, tenant=tenant)[0] == 200
    assert call("acquire", {"license_key": key, "hardware_id": "new"}, uid="newcomer")[0] == 201

    # revoke: the key opens nothing, every holder's next heartbeat is 410
    status, body = admin_api("DELETE", f"licenses/{license_id}", tenant=tenant)
    assert status == 200 and body["status"] == "revoked" and body["sessions_ended"] == 4
    assert call("acquire", {"license_key": key, "hardware_id": "hw-9"}, uid="user-9")[0] == 404
    assert call("validate", {"license_key": key}, uid="user-9")[0] == 404
    assert call("heartbeat", {"session_id": holders[1]}, uid="user-1")[1]["error"]["code"] == "SESSION_EXPIRED"
    assert admin_api("DELETE", f"licenses/{license_id}", tenant=tenant)[1]["status"] == "already_revoked"

    types = event_types(admin_api, tenant, license_id)
    assert types.count("license.update") == 3 and types.count("acquire") == 4 and types.count("revoke") == 4
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


def test_usage_reports_seats_now_and_daily_peak_and_denials(admin_api, tenants, call, rt):
    from shared.clock import rfc3339

    tenant = tenants[0]
    license_id, key = new_license(admin_api, tenant, max_seats=2)
    for i in range(2):
        call("acquire", {"license_key": key, "hardware_id": f"hw-{i}"}, uid=f"u{i}")
    for i in range(3):
        assert call("acquire", {"license_key": key, "hardware_id": "late"}, uid=f"late-{i}")[0] == 409

    status, body = admin_api("GET", f"licenses/{license_id}/usage", tenant=tenant, query={"days": "7"})

    today = rfc3339(rt.clock.now_ms())[:10]
    assert status == 200 and body["seats"] == {"used": 2, "max": 2}
    assert len(body["days"]) == 7 and body["days"][-1] == {"date": today, "peak": 2, "denials": 3}
    assert all(day == {"date": day["date"], "peak": 0, "denials": 0} for day in body["days"][:-1])
    assert admin_api("GET", f"licenses/{license_id}/usage", tenant=tenant, query={"days": "0"})[0] == 400
