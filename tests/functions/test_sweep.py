"""The sweep: expiry, settlement, recovery after Redis loss, revival, OIDC, robustness.

Each test gets its own Redis database and Firestore project (the emulator keeps projects
apart) and a clock it moves, because a sweep walks everything there is.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import replace

import pytest

from devstack.dev_tokens import emulator_id_token
from devstack.stack import SCHEDULER_ACCOUNT, SWEEP_AUDIENCE
from shared.auth.scheduler_oidc import REMOVED_SIGNATURE
from shared.runtime import Runtime, install_runtime
from shared.seats import LicenseKeys

# -- who may sweep ---------------------------------------------------------------------

def test_the_scheduler_may_sweep_and_the_answer_has_the_contract_fields(world):
    status, body = world.sweep()
    assert status == 200
    assert {"expired", "reconciled", "revived", "duration_ms"} <= set(body)


@pytest.mark.parametrize("case, status", [
    ("wrong audience", 401), ("forged", 401), ("expired", 401), ("other service account", 403),
    ("unverified email", 403), ("firebase user token", 401),
])
def test_anyone_else_is_refused(world, case, status):
    from cryptography.hazmat.primitives.asymmetric import rsa

    oidc = world.stack.oidc
    token = {
        "wrong audience": lambda: oidc.scheduler_token(audience="https://elsewhere", email=SCHEDULER_ACCOUNT),
        "forged": lambda: oidc.sign({"iss": "https://accounts.google.com", "aud": SWEEP_AUDIENCE,
                                     "email": SCHEDULER_ACCOUNT, "email_verified": True,
                                     "iat": 1, "exp": 4_000_000_000},
                                    key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "expired": lambda: world.stack.scheduler_token(iat=1_000_000_000, exp=1_000_000_100),
        "other service account": lambda: oidc.scheduler_token(audience=SWEEP_AUDIENCE,
                                                              email="intruder@x.iam.gserviceaccount.com"),
        "unverified email": lambda: world.stack.scheduler_token(email_verified=False),
        "firebase user token": lambda: emulator_id_token(world.rt.settings.project_id, "user-1"),
    }[case]()
    answer_status, body = world.sweep(token)
    assert answer_status == status and body["error"]["code"] in ("UNAUTHENTICATED", "FORBIDDEN")


def test_missing_token_is_401_and_get_is_405(world):
    assert world.clients["sweep"].post("/").status_code == 401
    assert world.clients["sweep"].get("/").status_code == 405


# -- deployed: Cloud Run checks the token and forwards it without its signature (issue 12) --

def forwarded(token: str) -> str:
    """What Cloud Run hands the container once its IAM check passed: the signature replaced."""
    header, claims, _signature = token.split(".")
    return f"{header}.{claims}.{REMOVED_SIGNATURE}"


@pytest.fixture
def behind_cloud_run(world):
    """The world as deployed: SCHEDULER_TRUST_PLATFORM_AUTH=1 (Terraform sets it on the functions)."""
    world.rt = Runtime(replace(world.rt.settings, scheduler_trust_platform_auth=True), clock=world.clock)
    install_runtime(world.rt)
    return world


def test_behind_cloud_run_the_forwarded_scheduler_token_runs_the_sweep(behind_cloud_run):
    status, body = behind_cloud_run.sweep(forwarded(behind_cloud_run.stack.scheduler_token()))
    assert status == 200 and {"expired", "reconciled", "revived", "duration_ms"} <= set(body)


def test_behind_cloud_run_a_signed_token_is_still_verified(behind_cloud_run):
    from cryptography.hazmat.primitives.asymmetric import rsa

    world = behind_cloud_run
    assert world.sweep(world.stack.scheduler_token())[0] == 200
    now = int(time.time())
    forged = world.stack.oidc.sign({"iss": "https://accounts.google.com", "aud": SWEEP_AUDIENCE, "sub": "1",
                                    "email": SCHEDULER_ACCOUNT, "email_verified": True, "iat": now, "exp": now + 600},
                                   key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    status, body = world.sweep(forged)
    assert status == 401 and body["error"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("case, status", [
    ("wrong audience", 401), ("wrong issuer", 401), ("expired", 401), ("issued in the future", 401),
    ("other service account", 403), ("unverified email", 403), ("firebase user token", 401),
    ("beside X-Serverless-Authorization", 401),
])
def test_behind_cloud_run_a_forwarded_tokens_claims_are_still_checked(behind_cloud_run, case, status):
    world, now = behind_cloud_run, int(time.time())
    oidc, headers = world.stack.oidc, {}
    token = {
        "wrong audience": lambda: oidc.scheduler_token(audience="https://elsewhere.run.app", email=SCHEDULER_ACCOUNT),
        "wrong issuer": lambda: world.stack.scheduler_token(iss="https://securetoken.google.com/demo-coditect"),
        "expired": lambda: world.stack.scheduler_token(iat=now - 7200, exp=now - 3600),
        "issued in the future": lambda: world.stack.scheduler_token(iat=now + 3600),
        "other service account": lambda: oidc.scheduler_token(audience=SWEEP_AUDIENCE,
                                                              email="intruder@x.iam.gserviceaccount.com"),
        "unverified email": lambda: world.stack.scheduler_token(email_verified=False),
        "firebase user token": lambda: emulator_id_token(world.rt.settings.project_id, "user-1"),
        "beside X-Serverless-Authorization": lambda: world.stack.scheduler_token(),
    }[case]()
    if case == "beside X-Serverless-Authorization":
        # Cloud Run checked this other header (a project editor's token) and passed
        # Authorization through untouched: a scheduler token anyone could have written.
        editors = oidc.scheduler_token(audience=SWEEP_AUDIENCE, email="editor@example.com")
        headers["X-Serverless-Authorization"] = f"Bearer {forwarded(editors)}"
    answer_status, body = world.sweep(forwarded(token), **headers)
    assert answer_status == status and body["error"]["code"] == ("FORBIDDEN" if status == 403 else "UNAUTHENTICATED")


def test_locally_a_token_without_its_signature_is_refused(world):
    assert world.rt.settings.scheduler_trust_platform_auth is False  # the local stack's setting
    status, body = world.sweep(forwarded(world.stack.scheduler_token()))
    assert status == 401 and body["error"]["code"] == "UNAUTHENTICATED"
    assert "SCHEDULER_TRUST_PLATFORM_AUTH" in body["error"]["message"]


def _segment(value) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


MALFORMED = {
    "two parts": "abc.def",
    "four parts": f"{_segment({'alg': 'RS256'})}.{_segment({})}.{REMOVED_SIGNATURE}.x",
    "not base64url": f"a*c.{_segment({})}.{REMOVED_SIGNATURE}",
    "header not JSON": f"{_segment(b'not json')}.{_segment({})}.{REMOVED_SIGNATURE}",
    "claims not JSON": f"{_segment({'alg': 'RS256'})}.{_segment(b'{')}.{REMOVED_SIGNATURE}",
    "claims a list": f"{_segment({'alg': 'RS256'})}.{_segment([])}.{REMOVED_SIGNATURE}",
    "claims nested too deep": f"{_segment({'alg': 'RS256'})}.{_segment(b'[' * 3000)}.{REMOVED_SIGNATURE}",
    "signed, header nested too deep": f"{_segment(b'[' * 3000)}.{_segment({})}.c2lnbmF0dXJl",
}


@pytest.mark.parametrize("trust", [False, True], ids=["local", "behind Cloud Run"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_token_is_401_with_a_json_error(world, trust, case):
    if trust:
        world.rt = Runtime(replace(world.rt.settings, scheduler_trust_platform_auth=True), clock=world.clock)
        install_runtime(world.rt)
    response = world.clients["sweep"].post("/", headers={"Authorization": f"Bearer {MALFORMED[case]}"})
    assert response.status_code == 401 and response.is_json
    assert response.get_json()["error"]["code"] == "UNAUTHENTICATED"


# -- expiry ------------------------------------------------------------------------------

def test_expired_leases_are_closed_at_their_expiry_with_audit_events(world):
    lic, key = world.license(seats=3, lease_ttl_s=60)
    dead = world.acquire(key, "dead-1")
    world.clock.advance(seconds=10)
    dying = world.acquire(key, "dead-2")
    alive = world.acquire(key, "alive")
    world.clock.advance(seconds=50)
    assert world.call("heartbeat", {"session_id": alive})[0] == 200

    world.clock.advance(seconds=15)  # dead expired 15 s ago, dying 5 s ago
    status, report = world.sweep()

    assert status == 200 and report["expired"] == 2
    for sid in (dead, dying):
        record = world.record(sid)
        assert record.status == "ended" and record.end_reason == "expired"
        assert record.ended_ms == record.acquired_ms + 60_000  # the lease's expiry, not the sweep's time
        assert record.last_heartbeat_ms == record.acquired_ms
        assert world.events(sid) == ["acquire", "expire"]
    assert world.record(alive).status == "active"
    # Redis forgot the settled ends and keeps the live one
    keys = LicenseKeys.of(lic.id)
    sessions, ended, unverified = keys.sessions, keys.ended, keys.unverified
    assert world.rt.redis.zcard(ended) == 0 and world.rt.redis.hkeys(sessions) == [alive.encode()]
    assert world.rt.redis.zcard(unverified) == 0  # alive is 65 s old: checked once against Firestore, found


def test_a_second_sweep_changes_nothing(world):
    _, key = world.license(seats=2, lease_ttl_s=60)
    sid = world.acquire(key)
    world.clock.advance(seconds=61)
    assert world.sweep()[1]["expired"] == 1
    again = world.sweep()[1]
    assert again["expired"] == 0 and again["reconciled"] == 0
    assert world.events(sid) == ["acquire", "expire"]


def test_idle_licenses_leave_the_sweep_index(world):
    from shared.seats.keys import index_shard

    lic, key = world.license(lease_ttl_s=60)
    world.acquire(key)
    assert lic.id in world.rt.sweep_ledger.indexed_licenses(index_shard(lic.id))
    world.clock.advance(seconds=61)
    world.sweep()
    assert lic.id not in world.rt.sweep_ledger.indexed_licenses(index_shard(lic.id))
    assert world.sweep()[1]["licenses"] == 0  # nothing left to walk


def test_concurrent_sweeps_close_each_lease_once(world):
    licenses = [world.license(seats=20, lease_ttl_s=60) for _ in range(5)]
    sids = [world.acquire(key, f"hw-{i}", uid=f"u{i}") for _, key in licenses for i in range(20)]
    world.clock.advance(seconds=61)
    reports, barrier = [], threading.Barrier(2)

    def run():
        barrier.wait()
        reports.append(world.sweep())

    threads = [threading.Thread(target=run) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    world.sweep()  # and a retry afterwards

    assert sum(r[1]["expired"] for r in reports) == 100
    assert all(world.events(sid) == ["acquire", "expire"] for sid in sids)


def test_a_firestore_failure_mid_sweep_loses_nothing_and_the_next_sweep_finishes(world):
    from shared.errors import BackendUnavailable

    _, key = world.license(seats=300, lease_ttl_s=60)
    sids = [world.acquire(key, f"hw-{i}", uid=f"u{i}") for i in range(300)]
    world.clock.advance(seconds=61)
    real_store = world.rt.store

    class FailsOnSecondBatch(type(real_store)):
        commits = 0

        def record_ends(self, ends):
            FailsOnSecondBatch.commits += 1
            if FailsOnSecondBatch.commits == 2:
                raise BackendUnavailable("firestore")
            return super().record_ends(ends)

    world.rt.override("firestore", FailsOnSecondBatch(real_store._db))
    world.rt.__dict__.pop("_sweeper", None)
    status, body = world.sweep()
    assert status == 503 and body["error"]["code"] == "UNAVAILABLE"
    closed_first = sum(1 for sid in sids if real_store.get_session(sid).status == "ended")
    assert 0 < closed_first < 300  # partial, consistent progress

    world.rt.override("firestore", real_store)
    world.rt.__dict__.pop("_sweeper", None)
    assert world.sweep()[0] == 200
    assert all(world.record(sid).end_reason == "expired" for sid in sids)
    assert all(world.events(sid) == ["acquire", "expire"] for sid in sids)


# -- recovery after Redis loses its data ----------------------------------------------------

def test_after_redis_loses_everything_live_sessions_come_back_and_heartbeats_recover(world):
    lic, key = world.license(seats=3, lease_ttl_s=60)
    sids = [world.acquire(key, f"hw-{i}", uid=f"u{i}") for i in range(3)]
    world.rt.redis.flushdb()  # Memorystore failover without persistence

    status, report = world.sweep()

    assert status == 200 and report["recovered"] and report["reconciled"] == 3
    leases = {m.decode() for m in world.rt.redis.zrange(LicenseKeys.of(lic.id).leases, 0, -1)}
    assert leases == set(sids) == {s.id for s in world.rt.store.active_sessions(lic.id)}
    for i, sid in enumerate(sids):
        assert world.call("heartbeat", {"session_id": sid}, uid=f"u{i}")[0] == 200
    assert world.call("acquire", {"license_key": key, "hardware_id": "late"}, uid="late")[0] == 409


def test_recovery_restores_no_session_of_a_revoked_license(world):
    lic, key = world.license(seats=3, lease_ttl_s=60)
    sids = [world.acquire(key, f"hw-{i}", uid=f"u{i}") for i in range(2)]
    # revoked durably, then Redis lost before the revocation could end the sessions there
    world.rt.store.revoke_license(replace(lic, revoked_ms=world.clock.now_ms()), _revoke_event(world, lic))
    world.rt.redis.flushdb()

    status, report = world.sweep()

    assert status == 200 and report["recovered"] and report["reconciled"] == 2
    assert world.rt.redis.zcard(LicenseKeys.of(lic.id).leases) == 0 and world.rt.store.active_sessions(lic.id) == []
    assert {world.record(sid).end_reason for sid in sids} == {"revoked"}
    for i, sid in enumerate(sids):
        status, body = world.call("heartbeat", {"session_id": sid}, uid=f"u{i}")
        assert status == 410 and "token" not in body


def test_a_borrowed_seat_and_a_held_one_survive_redis_loss_until_their_tokens_lapse(world):
    from shared.domain import Principal

    lic, key = world.license(seats=2, lease_ttl_s=60, max_borrow_s=3600, offline_grace_s=600)
    borrower, held = world.acquire(key, "laptop", uid="b"), world.acquire(key, "tablet", uid="h")
    for sid, uid in ((borrower, "b"), (held, "h")):
        assert world.call("borrow", {"session_id": sid, "duration_s": 3600}, uid=uid)[0] == 200
    vendor = Principal("vendor", role="owner")
    ended = world.rt.administration.force_release(vendor, lic.id, held)
    hold_end_ms = world.clock.now_ms() + 3600_000 + 600_000
    assert ended["seat_counted_until"] is not None
    world.rt.redis.flushdb()

    status, report = world.sweep()

    assert status == 200 and report["recovered"]
    world.clock.advance(seconds=120)  # far past a normal lease: both seats still count
    assert world.call("acquire", {"license_key": key, "hardware_id": "desk"}, uid="newcomer")[0] == 409
    assert world.call("heartbeat", {"session_id": borrower}, uid="b")[0] == 200
    world.clock.advance(ms=world.rt.store.get_session(borrower).borrowed_until_ms - world.clock.now_ms())
    assert world.call("acquire", {"license_key": key, "hardware_id": "desk"}, uid="newcomer")[0] == 201
    assert world.call("acquire", {"license_key": key, "hardware_id": "desk2"}, uid="second")[0] == 409  # the hold
    world.clock.set_ms(hold_end_ms + 1000)
    assert world.call("acquire", {"license_key": key, "hardware_id": "desk2"}, uid="second")[0] == 201


def _revoke_event(world, lic):
    from shared.domain import AuditEvent

    return AuditEvent(world.rt.ids.event_id(), lic.tenant_id, lic.id, "license.revoke", "tests", world.clock.now_ms())


def test_after_a_loss_a_newcomer_is_refused_while_the_holders_leases_are_valid(world):
    lic, key = world.license(seats=2, lease_ttl_s=60)
    oldest = world.acquire(key, "a", uid="a")
    world.clock.advance(seconds=1)
    newest = world.acquire(key, "b", uid="b")
    world.rt.redis.flushdb()
    world.clock.advance(seconds=1)

    # before any sweep: the acquire finds the table untrusted, rebuilds it from Firestore
    # inline, and the seats it would have taken are the lost holders'
    status, body = world.call("acquire", {"license_key": key, "hardware_id": "c"}, uid="c")
    assert status == 409 and body["error"]["code"] == "NO_SEAT_AVAILABLE"
    leases = LicenseKeys.of(lic.id).leases
    live = {m.decode() for m in world.rt.redis.zrangebyscore(leases, world.clock.now_ms() + 1, "+inf")}
    assert live == {oldest, newest}
    for sid, uid in ((oldest, "a"), (newest, "b")):
        assert world.call("heartbeat", {"session_id": sid}, uid=uid)[0] == 200  # the holders notice nothing
    world.sweep()
    assert {s.id for s in world.rt.store.active_sessions(lic.id)} == live  # desync 0


def test_a_heartbeat_between_the_loss_and_the_sweep_keeps_its_session(world):
    _, key = world.license(seats=2)
    sid = world.acquire(key)
    world.rt.redis.flushdb()
    status, body = world.call("heartbeat", {"session_id": sid})
    assert status == 200 and body["session_id"] == sid
    world.sweep()
    assert world.record(sid).status == "active" and world.events(sid) == ["acquire", "revived"]


def test_an_interrupted_recovery_resumes_where_it_stopped(world):
    licenses = [world.license(seats=3, lease_ttl_s=600) for _ in range(4)]
    for n, (_, key) in enumerate(licenses):
        for i in range(2):
            world.acquire(key, f"hw-{n}-{i}", uid=f"u{n}-{i}")
    world.rt.redis.flushdb()
    world.rt.override("sweeper", replace_budget(world.rt, 0.0))  # each run: one license, then out of time

    reports = [world.sweep()[1] for _ in range(4)]

    assert [r["rebuilt"] for r in reports] == [1, 1, 1, 1]  # never the same license twice
    assert not any(r["complete"] for r in reports)  # (no time left for the rest of a sweep either)
    for lic, _ in licenses:
        assert world.rt.redis.zcard(LicenseKeys.of(lic.id).leases) == 2
    world.rt.override("sweeper", replace_budget(world.rt, world.rt.settings.sweep_budget_s))
    assert world.sweep()[1]["recovered"] is False  # the walk is done for this Redis process


def replace_budget(rt, budget_s):
    from shared.licensing.sweep import Sweeper

    return Sweeper(seats=rt.seats, ledger=rt.sweep_ledger, store=rt.store, licenses=rt.licenses,
                   history=rt.usage_history, clock=rt.clock, budget_s=budget_s)


def test_a_lease_without_a_durable_record_is_ended(world):
    from shared.seats.keys import index_shard

    lic, _ = world.license(seats=2)
    # a grant whose process died before Firestore heard of it
    generation = world.rt.seats.generation(lic.id)
    world.rt.seats.restore(lic.id, [], now_ms=world.clock.now_ms(), ttl_ms=60_000, complete=True)  # a trusted table
    orphan = world.rt.seats.acquire(lic.id, generation=generation, now_ms=world.clock.now_ms(), ttl_ms=360_000,
                                    max_seats=2, uid="ghost", hardware_id="hw",
                                    new_session_id=world.rt.ids.session_id(lic.id)).session_id
    world.rt.seats.index_license(lic.id)
    assert lic.id in world.rt.sweep_ledger.indexed_licenses(index_shard(lic.id))

    world.clock.advance(seconds=30)
    assert world.sweep()[1]["reconciled"] == 0  # too young to judge: its record may be in flight
    world.clock.advance(seconds=31)
    assert world.sweep()[1]["reconciled"] == 1
    assert world.record(orphan).end_reason == "unrecorded"
    assert world.rt.redis.zcard(LicenseKeys.of(lic.id).leases) == 0


# -- revival -----------------------------------------------------------------------------------

def test_a_late_heartbeat_inside_the_revive_window_revives(world):
    _, key = world.license(seats=1, lease_ttl_s=60, revive_window_s=30)
    sid = world.acquire(key)
    world.clock.advance(seconds=70)  # 10 s late
    world.sweep()  # the expiry waits for the window before being settled
    status, body = world.call("heartbeat", {"session_id": sid})
    assert status == 200 and body["session_id"] == sid
    assert world.record(sid).status == "active"
    assert world.sweep()[1]["revived"] == 1
    assert world.events(sid) == ["acquire", "revived"]


def test_a_heartbeat_outside_the_window_is_410_and_the_expiry_is_settled(world):
    _, key = world.license(seats=1, lease_ttl_s=60, revive_window_s=30)
    sid = world.acquire(key)
    world.clock.advance(seconds=91)
    assert world.sweep()[1]["expired"] == 1
    assert world.call("heartbeat", {"session_id": sid})[0] == 410
    assert world.record(sid).ended_ms == world.record(sid).acquired_ms + 60_000


def test_no_revival_when_the_seat_was_taken(world):
    _, key = world.license(seats=1, lease_ttl_s=60, revive_window_s=30)
    sid = world.acquire(key, uid="first")
    world.clock.advance(seconds=61)
    world.acquire(key, "other", uid="second")
    assert world.call("heartbeat", {"session_id": sid}, uid="first")[0] == 410


def test_a_sweep_that_loses_its_lock_stops_writing_and_says_so(world):
    from shared.seats.keys import SWEEP_LOCK as LOCK_KEY

    licenses = [world.license(seats=5, lease_ttl_s=60) for _ in range(3)]
    for _, key in licenses:
        world.acquire(key)
    world.clock.advance(seconds=61)
    real_sweep_batch = world.rt.sweep_ledger.sweep_batch

    def steal_lock_then_sweep(license_id, **kwargs):
        world.rt.redis.set(LOCK_KEY, "someone-else")  # our lock expired; another sweep took it
        return real_sweep_batch(license_id, **kwargs)

    world.rt.sweep_ledger.sweep_batch = steal_lock_then_sweep
    try:
        status, report = world.sweep()
    finally:
        world.rt.sweep_ledger.sweep_batch = real_sweep_batch
    assert status == 200 and report["complete"] is False and report["expired"] == 0
    assert world.rt.redis.get(LOCK_KEY) == b"someone-else"  # not released by the loser


def test_a_session_firestore_holds_but_redis_never_did_is_closed_by_the_audit(world):
    from shared.domain import AuditEvent, SessionRecord

    lic, key = world.license(seats=2)
    held = world.acquire(key, "hw-a", uid="a")
    # a grant rolled back after its commit timed out, whose commit landed after all
    ghost = world.rt.ids.session_id(lic.id)
    now = world.clock.now_ms()
    world.rt.store.record_grant(
        SessionRecord(ghost, lic.id, lic.tenant_id, "b", "hw-b", now, now + 60_000),
        AuditEvent(f"{ghost}:acquire", lic.tenant_id, lic.id, "acquire", "b", now, session_id=ghost))

    status, report = world.sweep()

    assert status == 200 and report["audited"] == 2 and report["reconciled"] == 1
    assert world.record(ghost).end_reason == "not_held" and world.events(ghost) == ["acquire", "close-not-held"]
    assert world.record(held).status == "active"  # what Redis holds is left alone
    assert {s.id for s in world.rt.store.active_sessions(lic.id)} == {held}
