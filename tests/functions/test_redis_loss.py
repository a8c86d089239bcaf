"""A license's seat table after Redis lost part of it: rebuilt before it grants again.

The whole-Redis losses (flush, restart, failover) are in test_sweep.py, the chaos and
failover runs in tests/system/test_redis_loss_chaos.py and tests/integration/test_redis_failover.py.
"""

from __future__ import annotations

import time

from shared.seats import LicenseKeys


def _acquire(call, key, uid):
    status, body, _ = call("acquire", {"license_key": key, "hardware_id": f"hw-{uid}"}, uid=uid)
    assert status == 201, body
    return body


def test_losing_one_licenses_keys_rebuilds_that_license_only(call, make_license, rt):
    lost, kept = make_license(seats=2, lease_ttl_s=120), make_license(seats=2, lease_ttl_s=120)
    holders = {lic.license_id: [_acquire(call, lic.key, f"{lic.license_id}-{i}") for i in range(2)]
               for lic in (lost, kept)}
    kept_origin = rt.redis.get(LicenseKeys.of(kept.license_id).origin)
    rt.redis.delete(*LicenseKeys.of(lost.license_id).in_script_order())

    # the other license serves on, its table untouched
    assert call("validate", {"license_key": kept.key})[1]["seats"] == {"used": 2, "max": 2}
    assert rt.redis.get(LicenseKeys.of(kept.license_id).origin) == kept_origin
    # the lost one: a newcomer is refused, for its seats are the lost holders'
    status, body, _ = call("acquire", {"license_key": lost.key, "hardware_id": "hw-new"}, uid="newcomer")
    assert status == 409 and body["error"]["code"] == "NO_SEAT_AVAILABLE", body
    # and its holders keep their sessions, proven by their tokens
    for i, held in enumerate(holders[lost.license_id]):
        status, body, _ = call("heartbeat", {"session_id": held["session_id"], "lease_token": held["token"]},
                               uid=f"{lost.license_id}-{i}")
        assert status == 200 and body["session_id"] == held["session_id"]
    events = [e["type"] for held in holders[lost.license_id] for e in rt.store.events_for_session(held["session_id"])]
    assert "revived" not in events  # extended as their own, not revived


def test_a_restored_lease_without_a_valid_token_gets_no_seat_someone_else_holds(call, make_license, rt):
    lic = make_license(seats=1, lease_ttl_s=120)
    held = _acquire(call, lic.key, "holder")
    rt.redis.delete(*LicenseKeys.of(lic.license_id).in_script_order())
    # another token of the same service, but not this session's, proves nothing
    other = _acquire(call, make_license(seats=1).key, "stranger")
    status, body, _ = call("heartbeat", {"session_id": held["session_id"], "lease_token": other["token"]},
                           uid="holder")
    # one seat, and only this session counts: no one else holds it, so it is revived
    assert status == 200 and body["session_id"] == held["session_id"]
    assert [e["type"] for e in rt.store.events_for_session(held["session_id"])][-1] == "revived"


def test_while_another_instance_rebuilds_a_request_waits_then_gets_503_with_retry_after(call, make_license, rt):
    lic = make_license(seats=2)
    rt.redis.delete(LicenseKeys.of(lic.license_id).origin)  # untrusted, as after a failover
    token = rt.seats.lock_rebuild(lic.license_id, ttl_ms=60_000)  # "another instance" is at it
    try:
        started = time.monotonic()
        status, body, headers = call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid="waiting")
        waited = time.monotonic() - started
    finally:
        rt.seats.unlock_rebuild(lic.license_id, token)
    assert status == 503 and body["error"]["code"] == "UNAVAILABLE" and body["error"]["rebuilding"] is True
    assert headers["Retry-After"] == "1" and waited >= 2.5  # it waited for the rebuild first
    assert rt.seats.live_count(lic.license_id, now_ms=rt.clock.now_ms()) == 0  # nothing granted
    assert call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid="waiting")[0] == 201  # then served


def test_a_flush_is_repaired_by_one_sweep_and_reported(call, make_license, rt, stack):
    lics = [make_license(seats=3, lease_ttl_s=120) for _ in range(2)]
    sessions = {lic.license_id: {_acquire(call, lic.key, f"{lic.license_id}-{i}")["session_id"] for i in range(2)}
                for lic in lics}
    rt.redis.flushdb()

    status, report, _ = call("sweep", uid=None, token=stack.scheduler_token())

    assert status == 200 and report["recovered"] is True and report["rebuilt"] >= 2
    for lic in lics:
        live = {lease.session_id for lease in rt.seats.live_sessions(lic.license_id, now_ms=rt.clock.now_ms())}
        durable = {s.id for s in rt.store.active_sessions(lic.license_id)}
        assert live == durable == sessions[lic.license_id]  # desync 0


def test_usage_counters_survive_a_flush(call, make_license, rt, stack):
    from shared.domain import Principal
    from shared.licensing.admin_requests import UsageQuery

    lic = make_license(seats=1)
    _acquire(call, lic.key, "holder")
    for _ in range(2):
        assert call("acquire", {"license_key": lic.key, "hardware_id": "hw-late"}, uid="late")[0] == 409
    vendor = Principal("vendor", role="owner")

    def today() -> dict:
        return rt.usage_reports.recent_days(vendor, lic.license_id, UsageQuery(days=1))["days"][-1]

    assert today()["peak"] == 1 and today()["denials"] == 2
    assert call("sweep", uid=None, token=stack.scheduler_token())[0] == 200  # checkpointed
    rt.redis.flushdb()

    # the peak from the durable sessions, the denials from the checkpoint, before any rebuild
    assert today()["peak"] == 1 and today()["denials"] == 2
    assert call("acquire", {"license_key": lic.key, "hardware_id": "hw-late"}, uid="late")[0] == 409
    assert today()["denials"] == 3  # counting on from the durable 2, not from 0


def test_a_release_redis_lost_but_firestore_has_is_undone_by_the_rebuild(call, make_license, rt):
    lic = make_license(seats=1)
    held = _acquire(call, lic.key, "leaver")
    keys = LicenseKeys.of(lic.license_id).in_script_order()
    before = {key: rt.redis.dump(key) for key in keys}
    assert call("release", {"session_id": held["session_id"]}, uid="leaver")[0] == 200
    # a failover to a replica that missed the release: Redis as before it, Firestore ended
    for key, value in before.items():
        rt.redis.delete(key)
        if value is not None:
            rt.redis.restore(key, 0, value)
    rt.redis.delete(LicenseKeys.of(lic.license_id).origin)

    status, body, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw-next"}, uid="next")

    assert status == 201, body  # the released seat is free again: the rebuild erased the stale lease
    live = {lease.session_id for lease in rt.seats.live_sessions(lic.license_id, now_ms=rt.clock.now_ms())}
    assert live == {body["session_id"]} == {s.id for s in rt.store.active_sessions(lic.license_id)}
