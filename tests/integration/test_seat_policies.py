"""Seat policies in the seat scripts (issue 14), on real Redis: reservations, group
maximums, overdraft, their order, revival under them, and a race with all of them on.

The policy given to the scripts is SeatPolicy.script_policy; the caller's groups come from
SeatPolicy.groups_of (what the seat service passes). Times are fixed, as in
test_seat_scripts.py.
"""

from __future__ import annotations

import secrets
import threading

from shared.domain import Group, GroupSeats, Principal, SeatPolicy
from shared.domain.leases import RestoreEntry
from shared.domain.usage import hour_key
from shared.seats import LicenseKeys
from tests.integration.seat_table_fixtures import NOW, TTL, trusted_license

POLICY = SeatPolicy(
    groups=(Group("ci", uids=("ci-1", "ci-2", "ci-3")), Group("interns", uids=("int-1", "int-2", "int-3", "int-4"))),
    reserve=(GroupSeats("ci", 2),),
    max=(GroupSeats("interns", 2),),
)


def acquire(table, lic, uid, *, seats=5, policy=POLICY, now=NOW, hw="h"):
    groups = policy.groups_of(Principal(uid))
    return table.acquire(lic, generation=table.generation(lic), now_ms=now, ttl_ms=TTL, max_seats=seats, uid=uid,
                         hardware_id=hw, new_session_id=f"{lic}.{secrets.token_urlsafe(12)}",
                         policy=policy.script_policy(seats), groups=groups)


def release(table, lic, outcome, uid, now=NOW):
    return table.release(lic, outcome.session_id, now_ms=now, caller_uid=uid, may_act_for_others=False)


def test_reserved_seats_stay_free_for_their_group_and_members_take_them_first(table):
    lic = trusted_license(table)
    first = acquire(table, lic, "ci-1")
    assert first.kind == "GRANTED" and first.reserved_for == "ci"
    others = [acquire(table, lic, f"user-{i}") for i in range(3)]  # 5 seats - 2 reserved = 3 unreserved
    assert [o.kind for o in others] == ["GRANTED"] * 3 and not any(o.reserved_for for o in others)
    refused = acquire(table, lic, "user-9")  # one seat is idle, but it is ci's
    assert refused.kind == "FULL" and refused.used == 4 and refused.reserved_idle == 1
    second = acquire(table, lic, "ci-2")
    assert second.kind == "GRANTED" and second.reserved_for == "ci" and second.used == 5
    third = acquire(table, lic, "ci-3")  # ci's reservation used up: an unreserved seat, if any
    assert third.kind == "FULL"
    release(table, lic, others[0], "user-0")
    assert acquire(table, lic, "ci-3").reserved_for == ""  # a member may use an unreserved seat too


def test_a_freed_reserved_seat_goes_back_to_its_group(table):
    lic = trusted_license(table)
    ci = acquire(table, lic, "ci-1")
    for i in range(3):
        acquire(table, lic, f"user-{i}")
    release(table, lic, ci, "ci-1")
    assert acquire(table, lic, "user-8").kind == "FULL"
    assert acquire(table, lic, "ci-2").reserved_for == "ci"


def test_a_groups_maximum_counts_its_members_on_every_seat(table):
    lic = trusted_license(table)
    a, b = acquire(table, lic, "int-1"), acquire(table, lic, "int-2")
    assert a.kind == b.kind == "GRANTED"
    capped = acquire(table, lic, "int-3")
    assert (capped.kind, capped.group, capped.used, capped.max_seats) == ("GROUP_LIMIT", "interns", 2, 2)
    assert acquire(table, lic, "user-1").kind == "GRANTED"  # others are not held to it
    release(table, lic, a, "int-1")
    assert acquire(table, lic, "int-3").kind == "GRANTED"


def test_a_user_in_several_groups_is_held_to_each(table):
    policy = SeatPolicy(groups=(Group("a", uids=("both", "a-only")), Group("b", uids=("both",))),
                        max=(GroupSeats("a", 3), GroupSeats("b", 1)))
    lic = trusted_license(table)
    assert acquire(table, lic, "both", policy=policy, hw="1").kind == "GRANTED"
    limited = acquire(table, lic, "both", policy=policy, hw="2")
    assert limited.kind == "GROUP_LIMIT" and limited.group == "b"
    assert acquire(table, lic, "a-only", policy=policy).kind == "GRANTED"


def test_overdraft_grants_beyond_max_marked_and_never_past_it(table):
    policy = SeatPolicy(overdraft_seats=2)
    lic = trusted_license(table)
    granted = [acquire(table, lic, f"u{i}", seats=3, policy=policy, now=NOW + i) for i in range(5)]
    assert [g.kind for g in granted] == ["GRANTED"] * 5
    assert [g.overage for g in granted] == [False, False, False, True, True]
    refused = acquire(table, lic, "u9", seats=3, policy=policy)
    assert refused.kind == "FULL" and refused.used == 5 and refused.overdraft == 2
    # an unreserved seat freed: the oldest overage lease takes it, so overage = beyond max
    release(table, lic, granted[0], "u0", now=NOW + 5)
    heartbeat = table.heartbeat(lic, granted[3].session_id, generation=table.generation(lic), now_ms=NOW + 6,
                                ttl_ms=TTL, caller_uid="u3", may_act_for_others=False, max_seats=3,
                                policy=policy.script_policy(3))
    assert heartbeat.kind == "OK" and heartbeat.overage is False
    again = acquire(table, lic, "u8", seats=3, policy=policy)
    assert again.kind == "GRANTED" and again.overage is True


def test_overdraft_usage_keeps_the_hours_overage_peak(table, server):
    policy = SeatPolicy(overdraft_ratio=2.0)
    lic = trusted_license(table)
    for i in range(4):
        acquire(table, lic, f"u{i}", seats=2, policy=policy)
    usage = server.hgetall(LicenseKeys.of(lic).usage)
    # (the peak itself is read from the durable sessions: shared/domain/usage.py)
    assert int(usage[f"{hour_key(NOW)}:overage".encode()]) == 2


def test_a_revival_takes_a_seat_as_an_acquire_would(table):
    """A lease revived after its expiry may not take a reserved seat of another group."""
    lic = trusted_license(table)
    late = acquire(table, lic, "user-1")
    for i in range(2, 4):
        acquire(table, lic, f"user-{i}", now=NOW + 30_000)
    expired_at = NOW + TTL
    after = expired_at + 1_000
    acquire(table, lic, "user-4", now=after)  # takes the seat the late one left: unreserved full
    revived = table.heartbeat(lic, late.session_id, generation=table.generation(lic), now_ms=after + 1, ttl_ms=TTL,
                              caller_uid="user-1", may_act_for_others=False, revive_window_ms=10_000, max_seats=5,
                              policy=POLICY.script_policy(5))
    assert revived.kind == "ENDED"  # two seats free, both ci's


def test_restored_leases_keep_their_seat_class(table, server):
    lic = "lic_" + secrets.token_hex(10)
    entries = [RestoreEntry(f"{lic}.a", "ci-1", "h", NOW, groups=("ci",), reserved_for="ci"),
               RestoreEntry(f"{lic}.b", "u1", "h", NOW, overage=True)]
    assert table.restore(lic, entries, now_ms=NOW, ttl_ms=TTL, complete=True) == ["restored", "restored"]
    members = {m.decode() for m in server.zrange(LicenseKeys.of(lic).classes, 0, -1)}
    assert members == {f"g:ci\n{lic}.a", f"r:ci\n{lic}.a", f"o\n{NOW:015d}:{lic}.b"}


def test_ended_leases_leave_no_class_entries(table, server):
    lic = trusted_license(table)
    leases = [(uid, acquire(table, lic, uid)) for uid in ("ci-1", "int-1", "user-1")]
    for uid, outcome in leases:
        release(table, lic, outcome, uid)
    expired = acquire(table, lic, "ci-2")
    acquire(table, lic, "user-2", now=NOW + TTL + 1)  # moves the expired one out
    assert expired.kind == "GRANTED"
    remaining = {m.decode() for m in server.zrange(LicenseKeys.of(lic).classes, 0, -1)}
    assert not any(m.endswith(outcome.session_id) for _, outcome in leases for m in remaining)
    assert not any(m.endswith(expired.session_id) for m in remaining)


def test_no_race_exceeds_the_policy(table, server):
    """500 acquirers at once, members of ci and interns among them: never more than
    max + overdraft, ci's reserved seats never taken by others, interns never over their max."""
    seats = 20
    policy = SeatPolicy(groups=(Group("ci", uids=tuple(f"ci-{i}" for i in range(50))),
                                Group("interns", uids=tuple(f"int-{i}" for i in range(100)))),
                        reserve=(GroupSeats("ci", 5),), max=(GroupSeats("interns", 3),), overdraft_seats=2)
    lic = trusted_license(table)
    uids = [f"ci-{i}" for i in range(50)] + [f"int-{i}" for i in range(100)] + [f"u{i}" for i in range(350)]
    results: list = []
    barrier = threading.Barrier(25)

    def worker(offset: int) -> None:
        barrier.wait()
        for i in range(offset, len(uids), 25):
            outcome = acquire(table, lic, uids[i], seats=seats, policy=policy)
            results.append((uids[i], outcome))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(25)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    granted = [(uid, o) for uid, o in results if o.kind == "GRANTED"]
    assert len(granted) == seats + 2 == server.zcard(LicenseKeys.of(lic).leases)
    assert sum(o.overage for _, o in granted) == 2
    assert sum(uid.startswith("int-") for uid, _ in granted) <= 3
    reserved = [uid for uid, o in granted if o.reserved_for == "ci"]
    assert len(reserved) == 5 and all(uid.startswith("ci-") for uid in reserved)
