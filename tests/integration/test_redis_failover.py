"""A real failover: a primary and its replica (Debian's Redis 7, plain: the point is
replication), the replica promoted after the primary died without having sent it the last
writes, and the seat service pointed at the promoted replica.

The service runs in-process (each function through functions-framework's test client) on
a runtime of its own: its own Firestore project (the emulator keeps projects apart), the
pair's Redis, and a clock the test moves, shared by the runtimes before and after the
failover as a wall clock would be.

Holding replication back takes two steps: SIGSTOP the replica, then cut its link on the
primary (CLIENT KILL TYPE replica). A stopped replica alone loses nothing here: what the
primary writes meanwhile waits in the replica's socket buffer on this machine, and the
replica applies it when continued, even after the primary is gone.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from dataclasses import dataclass, replace

import pytest
import redis

from devstack.dev_tokens import emulator_id_token
from devstack.processes import wait_until
from devstack.redis_server import DEBIAN_REDIS_7, RedisServer
from shared.clock import ManualClock
from shared.licensing.provisioning import LicenseSpec
from shared.runtime import Runtime, install_runtime
from shared.seats import LicenseKeys
from shared.seats.keys import HOLD_PREFIX

pytestmark = pytest.mark.slow


class ReplicatedRedis:
    """A primary redis-server and one replica of it, on loopback."""

    def __init__(self, primary: RedisServer, replica: RedisServer) -> None:
        self.primary = primary
        self.replica = replica
        self._replica_stopped = False

    @classmethod
    def start(cls) -> ReplicatedRedis:
        primary = RedisServer(DEBIAN_REDIS_7).start()
        replica = RedisServer(DEBIAN_REDIS_7, extra_args=("--replicaof", "127.0.0.1", str(primary.port)))
        pair = cls(primary, replica)
        try:
            replica.start()
            wait_until(lambda: pair.replica_client().info("replication")["master_link_status"] == "up",
                       timeout_s=10, what="the replication link")
        except BaseException:
            pair.stop()
            raise
        return pair

    def primary_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.primary.url)

    def replica_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.replica.url)

    def replicated(self) -> None:
        """Return once the replica has everything the primary wrote so far."""
        assert self.primary_client().wait(1, 5000) == 1, "the replica did not acknowledge"

    def stop_replica(self) -> None:
        """SIGSTOP: it neither applies nor acknowledges anything until continued."""
        assert self.replica.process is not None
        os.kill(self.replica.process.pid, signal.SIGSTOP)
        self._replica_stopped = True

    def continue_replica(self) -> None:
        if self._replica_stopped and self.replica.process is not None:
            os.kill(self.replica.process.pid, signal.SIGCONT)
            self._replica_stopped = False

    def hold_back(self) -> None:
        """From now on the primary's writes stay on the primary: the replica stopped, its link cut."""
        self.stop_replica()
        assert self.primary_client().client_kill_filter(_type="replica") == 1

    def fail_over(self) -> str:
        """The primary dies (SIGKILL: nothing saved), the replica is promoted; its URL."""
        self.primary.kill()
        self.continue_replica()
        promoted = self.replica_client()
        promoted.replicaof("NO", "ONE")
        assert promoted.info("replication")["role"] == "master"
        return self.replica.url

    def stop(self) -> None:
        self.continue_replica()  # a stopped process would not act on SIGTERM
        self.replica.stop()
        self.primary.stop()


@pytest.fixture
def pair():
    servers = ReplicatedRedis.start()
    yield servers
    servers.stop()


@dataclass
class Service:
    """The seat service as the functions serve it, on whichever Redis it is pointed at."""

    rt: Runtime
    clock: ManualClock
    clients: dict

    def point_at(self, redis_url: str, **settings) -> None:
        """A new runtime on `redis_url` (what a redeploy with a new REDIS_URL gives), same project and clock."""
        self.rt = Runtime(replace(self.rt.settings, redis_url=redis_url, **settings), clock=self.clock)
        install_runtime(self.rt)

    def license(self, seats: int, **fields) -> tuple[str, str]:
        issued = self.rt.provisioning.create_license(LicenseSpec(tenant_id="failover", max_seats=seats, **fields),
                                                     actor="tests")
        return issued.license.id, issued.license_key

    def call(self, name: str, body: dict, *, uid: str) -> tuple[int, dict]:
        token = emulator_id_token(self.rt.settings.project_id, uid, email=f"{uid}@example.com")
        response = self.clients[name].post("/", json=body, headers={"Authorization": f"Bearer {token}"})
        return response.status_code, response.get_json(silent=True)

    def acquire(self, key: str, uid: str) -> tuple[int, dict]:
        return self.call("acquire", {"license_key": key, "hardware_id": f"hw-{uid}"}, uid=uid)

    def heartbeat(self, grant: dict, uid: str) -> tuple[int, dict]:
        return self.call("heartbeat", {"session_id": grant["session_id"], "lease_token": grant["token"]}, uid=uid)

    def live_leases(self, license_id: str) -> dict[str, int]:
        """Session id -> lease expiry (ms) of what counts now in this runtime's Redis (holds aside)."""
        scored = self.rt.redis.zrangebyscore(LicenseKeys.of(license_id).leases, f"({self.clock.now_ms()}", "+inf",
                                             withscores=True)
        return {m.decode(): int(s) for m, s in scored if not m.decode().startswith(HOLD_PREFIX)}

    def desync(self, license_id: str) -> tuple[set[str], set[str]]:
        """(Firestore-active but not live in Redis, live in Redis but not Firestore-active)."""
        durable = {s.id for s in self.rt.store.active_sessions(license_id)}
        live = set(self.live_leases(license_id))
        return durable - live, live - durable


@pytest.fixture
def service(rt, function_clients, pair):
    # A minute behind the wall clock, so the lease tokens it stamps are never from the
    # future: the token checker tests `iat` against the wall clock, not this one.
    clock = ManualClock(start_ms=rt.clock.now_ms() - 60_000)
    settings = replace(rt.settings, redis_url=pair.primary.url, redis_auth_secret=None, redis_ca_secret=None,
                       project_id=f"demo-failover-{secrets.token_hex(4)}")
    isolated = Service(Runtime(settings, clock=clock), clock, function_clients)
    install_runtime(isolated.rt)
    isolated.rt.provisioning.create_tenant("Failover tenant", tenant_id="failover", actor="tests")
    try:
        yield isolated
    finally:
        install_runtime(rt)


def test_a_failover_that_lost_the_last_grant_refuses_newcomers_and_restores_its_holder(pair, service, caplog):
    caplog.set_level("WARNING", logger="shared.licensing.rebuild")
    lic_id, key = service.license(seats=3, lease_ttl_s=60)
    grants = {}
    for uid in ("c1", "c2"):
        status, grants[uid] = service.acquire(key, uid)
        assert status == 201, grants[uid]
    pair.replicated()

    # given: the third grant and the first two's extensions exist only on the primary
    pair.hold_back()
    service.clock.advance(seconds=10)
    status, grants["c3"] = service.acquire(key, "c3")
    assert status == 201, grants["c3"]
    for uid in ("c1", "c2"):
        assert service.heartbeat(grants[uid], uid)[0] == 200
    on_primary = service.live_leases(lic_id)
    assert len(on_primary) == 3

    # when: the primary dies, the replica is promoted and the service pointed at it
    service.point_at(pair.fail_over())
    on_replica = service.live_leases(lic_id)
    sid = {uid: grant["session_id"] for uid, grant in grants.items()}
    assert sid["c3"] not in on_replica  # the loss is real: the grant never reached the replica
    assert all(on_replica[sid[u]] < on_primary[sid[u]] for u in ("c1", "c2"))  # and the extensions
    service.clock.advance(seconds=1)
    caplog.clear()  # the rebuilds before (a new license's first grant trusts its empty table) aside

    # then: the newcomer waits for a seat, the lost holders' leases are valid again
    started = time.perf_counter()
    status, refused = service.acquire(key, "newcomer")
    newcomer_ms = (time.perf_counter() - started) * 1000
    assert status == 409 and refused["error"]["code"] == "NO_SEAT_AVAILABLE", refused
    restored = service.live_leases(lic_id)
    assert set(restored) == set(sid.values())
    assert all(expiry > service.clock.now_ms() for expiry in restored.values())
    rebuilt = [r.getMessage() for r in caplog.records if "rebuilt from Firestore" in r.getMessage()]
    assert len(rebuilt) == 1, rebuilt

    # and their heartbeats succeed on the same sessions; the lost one shows its token
    beats = {uid: service.heartbeat(grants[uid], uid) for uid in ("c3", "c1", "c2")}
    assert {uid: (status, body.get("session_id")) for uid, (status, body) in beats.items()} == \
        {uid: (200, sid[uid]) for uid in beats}
    revivals = [e for uid in sid for e in service.rt.store.events_for_session(sid[uid]) if e["type"] == "revived"]
    assert revivals == []  # c3's token proved its lease valid: extended, not revived as an unproven one

    report = service.rt.sweeper.run().as_json()
    assert report["recovered"] and report["complete"], report
    assert service.desync(lic_id) == (set(), set())
    print(f"\nfailover that lost a grant: newcomer 409 in {newcomer_ms:.0f} ms "
          f"(including the inline rebuild: {rebuilt[0]}); heartbeats "
          f"{ {uid: beat[0] for uid, beat in beats.items()} }; one sweep later "
          f"(reconciled {report['reconciled']}, rebuilt {report['rebuilt']}) desync 0 "
          f"({len(service.live_leases(lic_id))} live leases == Firestore active sessions)")


def test_with_wait_on_no_acknowledged_grant_is_lost(pair, service):
    waiting = {"redis_wait_replicas": 1, "redis_wait_timeout_ms": 200}
    service.point_at(pair.primary.url, **waiting)
    lic_id, key = service.license(seats=4, lease_ttl_s=60)
    acknowledged = []
    for uid in ("a", "b"):
        status, grant = service.acquire(key, uid)
        assert status == 201, grant
        acknowledged.append(grant["session_id"])

    # while no replica can acknowledge, a grant is undone and refused...
    pair.stop_replica()
    started = time.perf_counter()
    status, refused = service.acquire(key, "c")
    refused_ms = (time.perf_counter() - started) * 1000
    assert status == 503 and refused["error"]["code"] == "UNAVAILABLE", refused
    assert set(service.live_leases(lic_id)) == set(acknowledged)  # no seat taken
    assert {s.id for s in service.rt.store.active_sessions(lic_id)} == set(acknowledged)

    # ...unless the operator chose availability
    service.point_at(pair.primary.url, **waiting, redis_wait_fallback="grant")
    status, degraded = service.acquire(key, "c")
    assert status == 201, degraded

    # with the replica back, grants are acknowledged; then the primary dies right after
    pair.continue_replica()
    pair.replicated()
    service.point_at(pair.primary.url, **waiting)
    status, grant = service.acquire(key, "d")
    assert status == 201, grant
    acknowledged.append(grant["session_id"])
    pair.hold_back()
    promoted_url = pair.fail_over()

    on_replica = {m.decode() for m in pair.replica_client().zrange(LicenseKeys.of(lic_id).leases, 0, -1)}
    assert set(acknowledged) <= on_replica
    service.point_at(promoted_url)
    service.rt.sweeper.run()
    assert service.desync(lic_id) == (set(), set())
    print(f"\nWAIT on: stopped replica -> 503 in {refused_ms:.0f} ms, nothing taken; fallback=grant -> 201; "
          f"{len(acknowledged)} acknowledged grants, all on the promoted replica "
          f"(the degraded one too: {degraded['session_id'] in on_replica}); desync 0 after one sweep")
