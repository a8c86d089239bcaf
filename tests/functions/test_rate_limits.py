"""429 RATE_LIMITED with Retry-After: per user, per IP, per license on acquire, public per IP."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.domain import Limit
from shared.runtime import Runtime, install_runtime


@pytest.fixture
def tight_limits(rt, manual_clock):
    """A runtime whose limits are small enough to hit in a test (same backends, movable clock)."""

    def install(**limits):
        settings = replace(rt.settings, **limits)
        install_runtime(Runtime(settings, clock=manual_clock))

    yield install
    install_runtime(rt)


def test_a_burst_over_the_user_limit_is_429_and_other_users_are_unaffected(call, make_license, tight_limits, manual_clock):
    lic = make_license(seats=5)
    tight_limits(rate_limit_user=Limit(1, 3))
    body = {"license_key": lic.key, "hardware_id": "hw"}

    burst = [call("validate", {"license_key": lic.key}, uid="greedy")[0] for _ in range(3)]
    refused = call("acquire", body, uid="greedy")
    other = call("acquire", body, uid="polite")

    assert burst == [200, 200, 200]
    assert refused[0] == 429 and refused[1]["error"]["code"] == "RATE_LIMITED"
    assert refused[1]["error"]["scope"] == "user" and refused[2]["Retry-After"] == "1"
    assert other[0] == 201
    manual_clock.advance(seconds=1)  # the sustained rate refills one request a second
    assert call("acquire", body, uid="greedy")[0] == 201


def test_a_refused_request_changes_nothing(call, make_license, tight_limits, rt):
    from shared.seats import LicenseKeys

    lic = make_license(seats=5)
    tight_limits(rate_limit_user=Limit(1, 1))
    assert call("acquire", {"license_key": lic.key, "hardware_id": "a"}, uid="u")[0] == 201
    assert call("acquire", {"license_key": lic.key, "hardware_id": "b"}, uid="u")[0] == 429
    assert rt.redis.zcard(LicenseKeys.of(lic.license_id).leases) == 1


def test_the_ip_limit_counts_bad_tokens_too(call, tight_limits):
    tight_limits(rate_limit_ip=Limit(1, 2))
    answers = [call("heartbeat", {"session_id": "x"}, uid=None, headers={"Authorization": "Bearer junk"})[0]
               for _ in range(3)]
    assert answers == [401, 401, 429]


def test_the_ip_is_the_one_our_proxy_appended_not_what_the_client_claims(call, tight_limits):
    tight_limits(rate_limit_ip=Limit(1, 1), trusted_proxy_hops=1)
    spoofing = {"X-Forwarded-For": "1.1.1.1, 203.0.113.7"}
    assert call("validate", {"license_key": "CDT-x"}, headers=spoofing)[0] == 404
    # a different claimed address, same real one: still the same client
    again = {"X-Forwarded-For": "9.9.9.9, 203.0.113.7"}
    assert call("validate", {"license_key": "CDT-x"}, headers=again)[0] == 429
    other_client = {"X-Forwarded-For": "203.0.113.8"}
    assert call("validate", {"license_key": "CDT-x"}, headers=other_client)[0] == 404


def test_acquire_is_limited_per_license(call, make_license, tight_limits):
    lic = make_license(seats=10)
    tight_limits(rate_limit_license_acquire=Limit(1, 2))
    answers = [call("acquire", {"license_key": lic.key, "hardware_id": f"hw-{i}"}, uid=f"user-{i}")[0] for i in range(3)]
    assert answers == [201, 201, 429]
    other = make_license(seats=10)
    assert call("acquire", {"license_key": other.key, "hardware_id": "hw"}, uid="user-9")[0] == 201


@pytest.mark.parametrize("name", ["health", "jwks"])
def test_public_functions_are_limited_per_ip_without_any_backend(call, tight_limits, name):
    tight_limits(rate_limit_public_ip=Limit(1, 2), redis_url="redis://127.0.0.1:1/0")  # Redis unreachable
    answers = [call(name, method="GET", uid=None)[0] for _ in range(3)]
    assert answers == [200, 200, 429]


def test_the_limiter_fails_open_when_redis_is_down(call, tight_limits):
    tight_limits(rate_limit_user=Limit(1, 1), redis_url="redis://127.0.0.1:1/0", redis_timeout_s=0.2)
    status, body, _ = call("validate", {"license_key": "CDT-x"})
    assert status == 404  # the request went on (and needed no Redis to be answered)


def test_the_limiter_reloads_its_script_after_redis_forgets_it(call, make_license, tight_limits, rt):
    lic = make_license()
    tight_limits(rate_limit_user=Limit(1, 1))
    assert call("validate", {"license_key": lic.key}, uid="forgetful")[0] == 200
    rt.redis.script_flush()  # as after a Memorystore restart
    assert call("validate", {"license_key": lic.key}, uid="forgetful")[0] == 429  # still counted, no 500
    assert call("validate", {"license_key": lic.key}, uid="someone-else")[0] == 200
