"""The CI pool in the seat scripts (issue 14, part 8), on real Redis: machine keys' seats
beside max_seats. A machine (uid `key:...`) takes a pool seat while the pool has room and
never a user's seat while the license has a pool; users never take a pool seat; the
overage bound and the unreserved count leave pool leases out; a race of machines and users
keeps both bounds. Times are fixed, as in test_seat_policies.py.
"""

from __future__ import annotations

import secrets
import threading

from shared.domain import EndReason, Group, GroupSeats, Principal, SeatPolicy
from shared.domain.leases import RestoreEntry
from shared.domain.policies import QueuePolicy
from shared.ids import new_ticket_id
from shared.seats import LicenseKeys
from tests.integration.seat_table_fixtures import NOW, TTL, trusted_license


def machine(n: int) -> str:
    return f"key:mk_{n:020d}"


NO_POLICY = SeatPolicy()


def acquire(table, lic, uid, *, seats=3, ci=2, policy=NO_POLICY, now=NOW, hw="h", wait=False):
    groups = () if uid.startswith("key:") and ci else policy.groups_of(Principal(uid))
    return table.acquire(lic, generation=table.generation(lic), now_ms=now, ttl_ms=TTL, max_seats=seats, uid=uid,
                         hardware_id=hw, new_session_id=f"{lic}.{secrets.token_urlsafe(12)}",
                         policy=policy.script_policy(seats, ci_seats=ci), groups=groups, wait=wait,
                         new_ticket=new_ticket_id(lic) if wait else "")


def release(table, lic, outcome, uid, now=NOW):
    return table.release(lic, outcome.session_id, now_ms=now, caller_uid=uid, may_act_for_others=False)


def test_machines_take_the_pool_and_users_the_seats_neither_the_others(table):
    lic = trusted_license(table)
    first = acquire(table, lic, machine(1), hw="runner-1")
    assert (first.kind, first.ci, first.used, first.max_seats) == ("GRANTED", True, 1, 2)
    assert acquire(table, lic, machine(1), hw="runner-2").ci  # one key, many runners: a lease per hardware id
    full = acquire(table, lic, machine(2))
    assert (full.kind, full.ci, full.used, full.max_seats) == ("FULL", True, 2, 2)
    assert full.earliest_expiry_ms == NOW + TTL
    users = [acquire(table, lic, f"u{i}") for i in range(3)]
    assert [(u.kind, u.ci, u.used) for u in users] == [("GRANTED", False, 1), ("GRANTED", False, 2),
                                                      ("GRANTED", False, 3)]
    refused = acquire(table, lic, "u9")
    assert (refused.kind, refused.ci, refused.used, refused.max_seats) == ("FULL", False, 3, 3)
    # a freed user seat is not a machine's, a freed pool seat not a user's
    release(table, lic, users[0], "u0")
    assert acquire(table, lic, machine(3)).kind == "FULL"
    release(table, lic, first, machine(1))
    assert acquire(table, lic, "u8").kind == "GRANTED"
    assert acquire(table, lic, "u7").kind == "FULL"
    assert acquire(table, lic, machine(3)).ci
    count = table.count(lic, generation=table.generation(lic), now_ms=NOW)
    assert (count.used, count.ci_used) == (3, 2) and table.seat_use(lic, now_ms=NOW) == (3, 2)


def test_without_a_pool_machines_hold_ordinary_seats(table):
    lic = trusted_license(table)
    granted = [acquire(table, lic, machine(i), ci=0) for i in range(3)]
    assert [(g.kind, g.ci) for g in granted] == [("GRANTED", False)] * 3
    assert acquire(table, lic, "u1", ci=0).kind == "FULL"
    assert table.seat_use(lic, now_ms=NOW) == (3, 0)


def test_a_pool_lease_is_renewed_as_a_pool_lease(table):
    lic = trusted_license(table)
    first = acquire(table, lic, machine(1))
    again = acquire(table, lic, machine(1), now=NOW + 1_000)
    assert (again.kind, again.session_id, again.ci, again.used, again.max_seats) == (
        "EXISTING", first.session_id, True, 1, 2)
    beat = table.heartbeat(lic, first.session_id, generation=table.generation(lic), now_ms=NOW + 2_000, ttl_ms=TTL,
                           caller_uid=machine(1), may_act_for_others=False, max_seats=3,
                           policy=SeatPolicy().script_policy(3, ci_seats=2))
    assert beat.kind == "OK" and beat.ci and beat.expires_ms == NOW + 2_000 + TTL


def test_the_overage_bound_and_the_unreserved_seats_leave_pool_leases_out(table):
    policy = SeatPolicy(groups=(Group("ci", uids=("ci-user",)),), reserve=(GroupSeats("ci", 1),), overdraft_seats=1)
    lic = trusted_license(table)
    pool = [acquire(table, lic, machine(i), policy=policy) for i in range(2)]
    assert all(p.ci for p in pool)
    # 3 seats, 1 reserved for ci: 2 unreserved for anyone, then 1 overage; the pool's 2 change none of it
    users = [acquire(table, lic, f"u{i}", policy=policy, now=NOW + i) for i in range(3)]
    assert [(u.kind, u.overage) for u in users] == [("GRANTED", False), ("GRANTED", False), ("GRANTED", True)]
    refused = acquire(table, lic, "u9", policy=policy)
    assert (refused.kind, refused.used, refused.reserved_idle, refused.overdraft) == ("FULL", 3, 1, 1)
    member = acquire(table, lic, "ci-user", policy=policy)
    assert member.kind == "GRANTED" and member.reserved_for == "ci"
    # a pool seat freed is no unreserved seat: the overage lease stays overage
    release(table, lic, pool[0], machine(0), now=NOW + 10)
    beat = table.heartbeat(lic, users[2].session_id, generation=table.generation(lic), now_ms=NOW + 11, ttl_ms=TTL,
                           caller_uid="u2", may_act_for_others=False, max_seats=3,
                           policy=policy.script_policy(3, ci_seats=2))
    assert beat.kind == "OK" and beat.overage is True
    assert acquire(table, lic, "u9", policy=policy, now=NOW + 12).kind == "FULL"


def test_machines_with_a_pool_never_queue_and_users_queue_past_them(table):
    policy = SeatPolicy(queue=QueuePolicy(max_length=10, claim_window_s=30, poll_interval_s=10))
    lic = trusted_license(table)
    assert acquire(table, lic, "u1", seats=1, ci=1, policy=policy).kind == "GRANTED"
    waiting = acquire(table, lic, "u2", seats=1, ci=1, policy=policy, wait=True)
    assert waiting.kind == "QUEUED"
    # a waiting ticket does not hold back a machine: the pool is not the queue's seat
    assert acquire(table, lic, machine(1), seats=1, ci=1, policy=policy, wait=True).ci
    refused = acquire(table, lic, machine(2), seats=1, ci=1, policy=policy, wait=True)
    assert (refused.kind, refused.ci) == ("FULL", True)
    assert [t.uid for t in table.queue(lic)] == ["u2"]


def test_restored_pool_leases_stay_in_the_pool(table, server):
    lic = "lic_" + secrets.token_hex(10)
    entries = [RestoreEntry(f"{lic}.a", machine(1), "runner", NOW, ci=True),
               RestoreEntry(f"{lic}.b", "u1", "h", NOW)]
    assert table.restore(lic, entries, now_ms=NOW, ttl_ms=TTL, complete=True) == ["restored", "restored"]
    members = {m.decode() for m in server.zrange(LicenseKeys.of(lic).classes, 0, -1)}
    assert members == {f"c\n{lic}.a"}
    assert table.seat_use(lic, now_ms=NOW) == (1, 1)
    # without its token, the restored pool lease comes back only into a pool seat nobody holds
    beat = table.heartbeat(lic, f"{lic}.a", generation=table.generation(lic), now_ms=NOW + 1, ttl_ms=TTL,
                           caller_uid=machine(1), may_act_for_others=False, max_seats=1, proven=False,
                           policy=SeatPolicy().script_policy(1, ci_seats=1))
    assert beat.kind == "REVIVED" and beat.ci


def test_an_expired_pool_lease_revives_only_into_the_pool(table):
    lic = trusted_license(table)
    late = acquire(table, lic, machine(1), seats=1, ci=1)
    after = NOW + TTL + 1_000
    assert acquire(table, lic, "u1", seats=1, ci=1, now=after).kind == "GRANTED"  # the user seat is taken
    revived = table.heartbeat(lic, late.session_id, generation=table.generation(lic), now_ms=after + 1, ttl_ms=TTL,
                              caller_uid=machine(1), may_act_for_others=False, revive_window_ms=10_000, max_seats=1,
                              policy=SeatPolicy().script_policy(1, ci_seats=1))
    assert revived.kind == "REVIVED" and revived.ci  # the pool had room, whatever the users hold
    assert acquire(table, lic, machine(2), seats=1, ci=1, now=after + 2).kind == "FULL"


def test_pool_leases_leave_no_class_entries(table, server):
    lic = trusted_license(table)
    leases = [acquire(table, lic, machine(i)) for i in range(2)]
    release(table, lic, leases[0], machine(0))
    acquire(table, lic, "u1", now=NOW + TTL + 1)  # moves the expired one out
    assert server.zrange(LicenseKeys.of(lic).classes, 0, -1) == []


def test_a_race_of_machines_and_users_keeps_both_bounds(table, server):
    """300 users and 200 machine runners at once on 10 seats + 2 overdraft + a pool of 5:
    users hold at most 12 (never a pool seat), machines at most 5 (never a user's seat)."""
    seats, overdraft, pool = 10, 2, 5
    policy = SeatPolicy(overdraft_seats=overdraft)
    lic = trusted_license(table)
    callers = [f"u{i}" for i in range(300)] + [machine(i % 7) for i in range(200)]
    hardware = [f"hw-{i}" for i in range(len(callers))]
    order = list(range(len(callers)))
    secrets.SystemRandom().shuffle(order)
    results: list = []
    barrier = threading.Barrier(25)

    def worker(offset: int) -> None:
        barrier.wait()
        for i in order[offset::25]:
            results.append((callers[i], acquire(table, lic, callers[i], seats=seats, ci=pool, policy=policy,
                                                hw=hardware[i])))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(25)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    granted = [(uid, o) for uid, o in results if o.kind == "GRANTED"]
    users = [o for uid, o in granted if not uid.startswith("key:")]
    machines = [o for uid, o in granted if uid.startswith("key:")]
    assert len(users) == seats + overdraft and not any(o.ci for o in users)
    assert sum(o.overage for o in users) == overdraft
    assert len(machines) == pool and all(o.ci for o in machines)
    assert server.zcard(LicenseKeys.of(lic).leases) == seats + overdraft + pool
    assert table.seat_use(lic, now_ms=NOW) == (seats + overdraft, pool)
    assert all(o.ci for uid, o in results if uid.startswith("key:") and o.kind == "FULL")


def test_a_borrowed_pool_seat_ended_by_an_admin_stays_the_pools_while_held(table, server):
    lic = trusted_license(table)
    borrowed = acquire(table, lic, machine(1), seats=1, ci=1)
    table.heartbeat(lic, borrowed.session_id, generation=table.generation(lic), now_ms=NOW, ttl_ms=600_000,
                    caller_uid=machine(1), may_act_for_others=False, max_seats=1, borrow=True,
                    policy=SeatPolicy().script_policy(1, ci_seats=1))
    ended = table.release(lic, borrowed.session_id, now_ms=NOW + 1, caller_uid="admin", may_act_for_others=True,
                          end=EndReason.FORCED, offline_grace_ms=60_000)
    held_until = ended.end.held_until_ms
    assert held_until == NOW + 600_000 + 60_000
    assert table.seat_use(lic, now_ms=NOW + 2) == (0, 1)  # the pool's, not a user's
    assert acquire(table, lic, "u1", seats=1, ci=1, now=NOW + 2).kind == "GRANTED"
    assert acquire(table, lic, machine(2), seats=1, ci=1, now=NOW + 3).kind == "FULL"
    holders = {lease.session_id: lease.ci for lease in table.live_sessions(lic, now_ms=NOW + 3)}
    assert holders[borrowed.session_id] is True
    # after the hold: the pool seat is free and no class entry is left of it
    after = held_until + 1
    assert acquire(table, lic, machine(2), seats=1, ci=1, now=after).ci
    assert not [m for m in server.zrange(LicenseKeys.of(lic).classes, 0, -1) if b"hold:" in m]
    # and a rebuild puts a held pool seat back as the pool's
    rebuilt = "lic_" + secrets.token_hex(10)
    entries = [RestoreEntry(f"{rebuilt}.a", machine(1), "runner", NOW, until_ms=NOW + 60_000, hold=True, ci=True)]
    assert table.restore(rebuilt, entries, now_ms=NOW, ttl_ms=TTL, complete=True) == ["held"]
    assert table.seat_use(rebuilt, now_ms=NOW) == (0, 1)
