"""heartbeat and release: owner-only, idempotent, honest about ended sessions."""

from __future__ import annotations

import pytest


@pytest.fixture
def session(call, make_license):
    lic = make_license(seats=2, lease_ttl_s=60)
    status, body, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw-a"}, uid="owner")
    assert status == 201
    return lic, body["session_id"]


def test_heartbeat_extends_the_lease_and_reissues_the_token(call, session, manual_clock):
    _, sid = session
    manual_clock.advance(seconds=30)
    status, body, _ = call("heartbeat", {"session_id": sid}, uid="owner")
    assert status == 200
    assert body["status"] == "ok" and body["session_id"] == sid and body["token"].count(".") == 2
    assert body["heartbeat_interval_s"] == 50


def test_heartbeats_keep_a_session_alive_past_its_first_ttl(call, make_license, manual_clock):
    lic = make_license(seats=1, lease_ttl_s=60)
    sid = call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid="owner")[1]["session_id"]
    for _ in range(5):
        manual_clock.advance(seconds=50)
        assert call("heartbeat", {"session_id": sid}, uid="owner")[0] == 200
    # 250 s later the seat is still held
    assert call("acquire", {"license_key": lic.key, "hardware_id": "other"}, uid="x")[0] == 409


def test_heartbeat_after_expiry_is_410(call, session, manual_clock):
    _, sid = session
    manual_clock.advance(seconds=60)
    status, body, _ = call("heartbeat", {"session_id": sid}, uid="owner")
    assert status == 410 and body["error"]["code"] == "SESSION_EXPIRED"


def test_heartbeat_of_another_users_session_is_403(call, session):
    _, sid = session
    status, body, _ = call("heartbeat", {"session_id": sid}, uid="intruder")
    assert status == 403 and body["error"]["code"] == "FORBIDDEN"


def test_tenant_admin_may_heartbeat_and_release_for_a_user(call, session):
    lic, sid = session
    assert call("heartbeat", {"session_id": sid}, uid="admin", tenant=lic.tenant_id, role="admin")[0] == 200
    other_admin = call("release", {"session_id": sid}, uid="admin2", tenant="other-tenant", role="admin")
    assert other_admin[0] == 403
    assert call("release", {"session_id": sid}, uid="admin", tenant=lic.tenant_id, role="admin")[1] == {
        "status": "released"
    }


@pytest.mark.parametrize("name", ["heartbeat", "release"])
@pytest.mark.parametrize("sid", ["garbage", "lic_00000000000000000000.AAAAAAAAAAAAAAAAAAAAAA"])
def test_unknown_session_is_404(call, name, sid):
    status, body, _ = call(name, {"session_id": sid})
    assert status == 404 and body["error"]["code"] == "SESSION_NOT_FOUND"


def test_unknown_session_of_a_real_license_is_404(call, session):
    lic, _ = session
    status, body, _ = call("heartbeat", {"session_id": f"{lic.license_id}.AAAAAAAAAAAAAAAAAAAAAA"})
    assert status == 404 and body["error"]["code"] == "SESSION_NOT_FOUND"


def test_release_frees_the_seat_and_is_idempotent(call, make_license, rt):
    lic = make_license(seats=1)
    sid = call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid="owner")[1]["session_id"]

    first = call("release", {"session_id": sid}, uid="owner")
    second = call("release", {"session_id": sid}, uid="owner")

    assert first[:2] == (200, {"status": "released"})
    assert second[:2] == (200, {"status": "already_released"})
    assert call("acquire", {"license_key": lic.key, "hardware_id": "hw-2"}, uid="next")[0] == 201
    record = rt.store.get_session(sid)
    assert record.status == "ended" and record.end_reason == "released"
    events = {e["type"] for e in rt.store.events_for_session(sid)}
    assert events == {"acquire", "release"}


def test_release_of_another_users_session_is_403_even_after_it_ended(call, session):
    _, sid = session
    assert call("release", {"session_id": sid}, uid="intruder")[0] == 403
    assert call("release", {"session_id": sid}, uid="owner")[0] == 200
    assert call("release", {"session_id": sid}, uid="intruder")[0] == 403


def test_heartbeat_after_release_is_410(call, session):
    _, sid = session
    call("release", {"session_id": sid}, uid="owner")
    status, body, _ = call("heartbeat", {"session_id": sid}, uid="owner")
    assert status == 410 and body["error"]["code"] == "SESSION_EXPIRED"


def test_release_of_an_expired_lease_is_already_released_and_recorded_as_expiry(call, session, manual_clock, rt):
    _, sid = session
    manual_clock.advance(seconds=61)
    assert call("release", {"session_id": sid}, uid="owner")[:2] == (200, {"status": "already_released"})
    record = rt.store.get_session(sid)
    assert record.end_reason == "expired"
    assert record.ended_ms == record.lease_expires_ms  # ended at the lease's expiry, not at release time


def test_release_retried_after_a_failed_durable_write_finishes_the_record(call, make_license, rt):
    from shared.errors import BackendUnavailable
    from shared.runtime import Runtime, install_runtime

    class FirestoreDownOnEnd(type(rt.store)):
        def record_ends(self, *args, **kwargs):
            raise BackendUnavailable("firestore")

    lic = make_license(seats=1)
    sid = call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid="owner")[1]["session_id"]
    broken = Runtime(rt.settings)
    broken.override("firestore", FirestoreDownOnEnd(rt.firestore._db))
    install_runtime(broken)
    try:
        assert call("release", {"session_id": sid}, uid="owner")[0] == 503
    finally:
        install_runtime(rt)

    assert rt.store.get_session(sid).status == "active"  # nothing durable yet ...
    assert call("release", {"session_id": sid}, uid="owner")[:2] == (200, {"status": "already_released"})
    record = rt.store.get_session(sid)  # ... and the retry completed it
    assert record.status == "ended" and record.end_reason == "released"


def test_heartbeat_on_a_suspended_license_is_403_and_does_not_extend_the_lease(call, make_license, rt, manual_clock):
    from shared.seats import LicenseKeys

    lic = make_license(seats=1, lease_ttl_s=60)
    sid = call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid="owner")[1]["session_id"]
    expiry_before = rt.redis.zscore(LicenseKeys.of(lic.license_id).leases, sid)
    # an admin suspends it (the admin function does exactly this: document, then generation)
    rt.firestore._db.collection("licenses").document(lic.license_id).update({"suspended": True})
    rt.seats.bump_generation(lic.license_id)

    manual_clock.advance(seconds=10)
    status, body, _ = call("heartbeat", {"session_id": sid}, uid="owner")

    assert status == 403 and body["error"]["code"] == "LICENSE_SUSPENDED"
    assert rt.redis.zscore(LicenseKeys.of(lic.license_id).leases, sid) == expiry_before
