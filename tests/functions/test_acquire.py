"""acquire, in-process through functions-framework, over the real stack."""

from __future__ import annotations

from shared.domain.times import rfc3339


def test_first_acquire_creates_a_session_with_a_lease_token(call, make_license):
    lic = make_license(seats=2, tier="pro", features=("build",))

    status, body, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw-a", "client": {"version": "1.2"}})

    assert status == 201
    assert body["session_id"].startswith(lic.license_id + ".")
    assert body["token"].count(".") == 2
    assert body["heartbeat_interval_s"] == 300
    assert body["seats"] == {"used": 1, "max": 2}
    assert body["license"] == {"id": lic.license_id, "tier": "pro", "features": ["build"], "expires_at": None}
    assert body["expires_at"].endswith("Z")


def test_same_user_and_hardware_get_the_same_session_back_with_200(call, make_license):
    lic = make_license(seats=1)
    first = call("acquire", {"license_key": lic.key, "hardware_id": "hw-a"})
    again = call("acquire", {"license_key": lic.key, "hardware_id": "hw-a"})

    assert (first[0], again[0]) == (201, 200)
    assert again[1]["session_id"] == first[1]["session_id"]
    assert again[1]["seats"] == {"used": 1, "max": 1}


def test_same_hardware_other_user_needs_its_own_seat(call, make_license):
    lic = make_license(seats=1)
    assert call("acquire", {"license_key": lic.key, "hardware_id": "hw-a"}, uid="alice")[0] == 201
    status, body, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw-a"}, uid="bob")
    assert status == 409 and body["error"]["code"] == "NO_SEAT_AVAILABLE"


def test_full_license_answers_409_with_seats_and_retry_after(call, make_license):
    lic = make_license(seats=2, lease_ttl_s=120)
    for hw in ("hw-1", "hw-2"):
        assert call("acquire", {"license_key": lic.key, "hardware_id": hw})[0] == 201

    status, body, headers = call("acquire", {"license_key": lic.key, "hardware_id": "hw-3"})

    assert status == 409
    assert body["error"]["code"] == "NO_SEAT_AVAILABLE"
    assert body["error"]["seats"] == {"used": 2, "max": 2}
    assert 1 <= int(headers["Retry-After"]) <= 120


def test_key_is_accepted_in_any_case_and_without_hyphens(call, make_license):
    lic = make_license()
    sloppy = lic.key.lower().replace("-", " ")
    assert call("acquire", {"license_key": sloppy, "hardware_id": "hw-a"})[0] == 201


def test_unknown_key_is_404(call):
    from shared.licensing.license_keys import new_license_key

    status, body, _ = call("acquire", {"license_key": new_license_key(), "hardware_id": "hw-a"})
    assert status == 404 and body["error"]["code"] == "LICENSE_NOT_FOUND"


def test_mistyped_key_is_404_saying_the_checksum_failed(call, make_license):
    lic = make_license()
    last = lic.key[-1]
    typo = lic.key[:-1] + ("A" if last != "A" else "B")

    status, body, _ = call("acquire", {"license_key": typo, "hardware_id": "hw-a"})

    assert status == 404 and body["error"]["code"] == "LICENSE_NOT_FOUND"
    assert "checksum" in body["error"]["message"]


def test_suspended_license_is_403(call, make_license):
    lic = make_license(suspended=True)
    status, body, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw-a"})
    assert status == 403 and body["error"]["code"] == "LICENSE_SUSPENDED"


def test_expired_license_is_410(call, make_license, rt):
    lic = make_license(expires_ms=rt.clock.now_ms() - 1000)
    status, body, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw-a"})
    assert status == 410 and body["error"]["code"] == "LICENSE_EXPIRED"


def test_license_expiry_is_reported(call, make_license, rt):
    expires = rt.clock.now_ms() + 86_400_000
    lic = make_license(expires_ms=expires)
    status, body, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw-a"})
    assert status == 201 and body["license"]["expires_at"] == rfc3339(expires)


def test_allowed_domains_admit_only_verified_matching_emails(call, make_license):
    lic = make_license(allowed_domains=("example.org",))
    body = {"license_key": lic.key, "hardware_id": "hw-a"}

    outsider = call("acquire", body, uid="eve", email="eve@evil.test")
    unverified = call("acquire", body, uid="mallory", email="mallory@example.org", email_verified=False)
    member = call("acquire", body, uid="ann", email="ann@EXAMPLE.org")

    assert outsider[0] == 403 and outsider[1]["error"]["code"] == "FORBIDDEN"
    assert unverified[0] == 403
    assert member[0] == 201


def test_zombie_lease_frees_its_seat_exactly_at_expiry(call, make_license, manual_clock):
    # given a 1-seat license held by a client that then dies (never heartbeats)
    lic = make_license(seats=1, lease_ttl_s=60)
    assert call("acquire", {"license_key": lic.key, "hardware_id": "dead"}, uid="crashed")[0] == 201

    # when another client asks 1 ms before the lease's expiry: still taken
    manual_clock.advance(ms=59_999)
    before = call("acquire", {"license_key": lic.key, "hardware_id": "live"}, uid="next")
    # and exactly at expiry: granted, with no sweep having run
    manual_clock.advance(ms=1)
    at = call("acquire", {"license_key": lic.key, "hardware_id": "live"}, uid="next")

    assert before[0] == 409 and before[2]["Retry-After"] == "1"
    assert at[0] == 201 and at[1]["seats"] == {"used": 1, "max": 1}


def test_failed_durable_write_rolls_the_grant_back_and_answers_503(call, make_license, rt):
    from shared.errors import BackendUnavailable
    from shared.runtime import Runtime, install_runtime
    from shared.seats import LicenseKeys

    class FirestoreDownOnGrant(type(rt.store)):
        def record_grant(self, session, event):
            raise BackendUnavailable("firestore")

    lic = make_license(seats=1)
    broken = Runtime(rt.settings)
    broken.override("firestore", FirestoreDownOnGrant(rt.firestore._db))
    install_runtime(broken)
    try:
        status, body, headers = call("acquire", {"license_key": lic.key, "hardware_id": "hw-a"})
    finally:
        install_runtime(rt)

    assert status == 503 and body["error"]["code"] == "UNAVAILABLE" and "Retry-After" in headers
    keys = LicenseKeys.of(lic.license_id)
    leases, holders, sessions, ended, unverified = keys.leases, keys.holders, keys.sessions, keys.ended, keys.unverified
    assert rt.redis.zcard(leases) == 0 and rt.redis.hlen(holders) == 0 and rt.redis.hlen(sessions) == 0
    assert rt.redis.zcard(ended) == 0 and rt.redis.zcard(unverified) == 0
    # and the seat is really free
    assert call("acquire", {"license_key": lic.key, "hardware_id": "hw-b"})[0] == 201


def test_redis_down_is_503_unavailable(call, make_license, rt):
    from dataclasses import replace

    from devstack.processes import free_port
    from shared.runtime import Runtime, install_runtime

    lic = make_license()
    dead_redis = replace(rt.settings, redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout_s=0.5)
    install_runtime(Runtime(dead_redis))
    try:
        status, body, headers = call("acquire", {"license_key": lic.key, "hardware_id": "hw-a"})
    finally:
        install_runtime(rt)
    assert status == 503 and body["error"] == {
        "code": "UNAVAILABLE", "message": "redis is unavailable; retry shortly", "backend": "redis"
    }
    assert headers["Retry-After"] == "2"


def test_an_admin_change_is_seen_by_the_next_acquire_despite_the_cache(call, make_license, rt):
    lic = make_license(seats=5)
    assert call("acquire", {"license_key": lic.key, "hardware_id": "hw-1"})[0] == 201  # cache warm
    rt.firestore._db.collection("licenses").document(lic.license_id).update({"suspended": True})

    # without the generation bump the warm cache still answers (what the bump is for) ...
    assert call("acquire", {"license_key": lic.key, "hardware_id": "hw-2"})[0] == 201
    # ... with it, the very next acquire sees the suspension
    rt.seats.bump_generation(lic.license_id)
    status, body, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw-3"})
    assert status == 403 and body["error"]["code"] == "LICENSE_SUSPENDED"


def test_a_per_user_session_limit_counts_the_users_machines(call, make_license):
    lic = make_license(seats=10, max_sessions_per_user=2)
    body = lambda hw: {"license_key": lic.key, "hardware_id": hw}  # noqa: E731
    weird = "we*ird?[user]"  # glob characters in a uid must not widen the count
    assert call("acquire", body("laptop"), uid=weird)[0] == 201
    assert call("acquire", body("desktop"), uid=weird)[0] == 201
    status, answer, _ = call("acquire", body("vm"), uid=weird)
    assert status == 409 and answer["error"]["code"] == "USER_SESSION_LIMIT"
    assert answer["error"]["sessions"] == {"used": 2, "max": 2}
    assert call("acquire", body("laptop"), uid=weird)[0] == 200  # the same machine again is not a new session
    assert call("acquire", body("vm"), uid="we")[0] == 201  # another user is unaffected
    assert call("acquire", body("vm2"), uid="weXird?[user]")[0] == 201
