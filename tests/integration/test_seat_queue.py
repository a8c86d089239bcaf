"""The wait queue in the seat scripts (issue 14), on real Redis, with a clock the test moves.

A license with one seat and a queue (claim window 30 s, poll interval 10 s: a ticket not
polled for 30 s lapses): fairness in arrival order, lapsed and unclaimed tickets skipped,
no newcomer overtaking, cancellation, priority groups, a policy edit reaching waiting
tickets, and the queue's bound.
"""

from __future__ import annotations

import secrets

import pytest

from shared.domain import Group, Principal, SeatPolicy
from shared.domain.policies import QueuePolicy
from shared.ids import new_ticket_id
from shared.seats import LicenseKeys
from tests.integration.seat_table_fixtures import NOW, TTL, trusted_license

QUEUE = SeatPolicy(queue=QueuePolicy(max_length=50, claim_window_s=30, poll_interval_s=10))




@pytest.fixture
def lic(table):
    return trusted_license(table)


def acquire(table, lic, uid, now, *, policy=QUEUE, wait=False, ticket=None, seats=1):
    return table.acquire(lic, generation=table.generation(lic), now_ms=now, ttl_ms=TTL, max_seats=seats, uid=uid,
                         hardware_id="hw", new_session_id=f"{lic}.{secrets.token_urlsafe(16)}",
                         policy=policy.script_policy(seats), groups=policy.groups_of(Principal(uid)),
                         ticket=ticket, wait=wait, new_ticket=new_ticket_id(lic) if wait and not ticket else "")


def release(table, lic, outcome, uid, now):
    table.release(lic, outcome.session_id, now_ms=now, caller_uid=uid, may_act_for_others=False)


def test_twenty_waiters_get_the_seat_in_arrival_order(table, lic):
    holder = acquire(table, lic, "first", NOW)
    assert holder.kind == "GRANTED"
    tickets = {}
    for i in range(20):
        queued = acquire(table, lic, f"w{i:02d}", NOW + i, wait=True)
        assert (queued.kind, queued.position, queued.queue_length) == ("QUEUED", i + 1, i + 1)
        tickets[f"w{i:02d}"] = queued.ticket
    served, now, current, current_uid = [], NOW + 100, holder, "first"
    for _ in range(20):
        release(table, lic, current, current_uid, now)
        now += 1_000
        # every waiter polls; exactly the head converts
        for uid in sorted(tickets):
            polled = acquire(table, lic, uid, now, ticket=tickets[uid])
            if polled.kind == "GRANTED":
                served.append(uid)
                assert polled.waited_ms > 0
                current, current_uid = polled, uid
                del tickets[uid]
            else:
                assert polled.kind == "QUEUED"
    assert served == [f"w{i:02d}" for i in range(20)]


def test_a_newcomer_never_overtakes_a_waiting_ticket(table, lic):
    holder = acquire(table, lic, "first", NOW)
    waiter = acquire(table, lic, "waiter", NOW + 1, wait=True)
    release(table, lic, holder, "first", NOW + 2)
    newcomer = acquire(table, lic, "newcomer", NOW + 3)  # the seat is free, but held for the waiter
    assert newcomer.kind == "FULL" and newcomer.used == 1
    asked_to_wait = acquire(table, lic, "newcomer", NOW + 4, wait=True)
    assert (asked_to_wait.kind, asked_to_wait.position) == ("QUEUED", 2)
    assert acquire(table, lic, "waiter", NOW + 5, ticket=waiter.ticket).kind == "GRANTED"


def test_a_waiter_that_stops_polling_lapses_and_is_skipped(table, lic):
    holder = acquire(table, lic, "first", NOW)
    silent = acquire(table, lic, "silent", NOW + 1, wait=True)
    patient = acquire(table, lic, "patient", NOW + 2, wait=True)
    for t in range(10_000, 40_000, 10_000):  # the patient one polls every 10 s; the silent one never
        assert acquire(table, lic, "patient", NOW + t, ticket=patient.ticket).position in (1, 2)
    assert acquire(table, lic, "patient", NOW + 40_000, ticket=patient.ticket).position == 1
    release(table, lic, holder, "first", NOW + 41_000)
    assert acquire(table, lic, "patient", NOW + 42_000, ticket=patient.ticket).kind == "GRANTED"
    assert acquire(table, lic, "silent", NOW + 43_000, ticket=silent.ticket).kind == "TICKET_GONE"


def test_a_seat_not_claimed_in_its_window_passes_to_the_next(table, lic, server):
    short = SeatPolicy(queue=QueuePolicy(claim_window_s=5, poll_interval_s=5))  # alive 15 s, claim 5 s
    holder = acquire(table, lic, "first", NOW, policy=short)
    slow = acquire(table, lic, "slow", NOW + 1, policy=short, wait=True)
    quick = acquire(table, lic, "quick", NOW + 2, policy=short, wait=True)
    release(table, lic, holder, "first", NOW + 3)
    assert acquire(table, lic, "quick", NOW + 1_000, policy=short, ticket=quick.ticket).kind == "QUEUED"  # slow's now
    # slow, alive until NOW + 15 s, does not poll within its 5 s claim window: the seat passes on
    assert acquire(table, lic, "quick", NOW + 6_500, policy=short, ticket=quick.ticket).kind == "GRANTED"
    assert acquire(table, lic, "slow", NOW + 7_000, policy=short, ticket=slow.ticket).kind == "TICKET_GONE"
    keys = LicenseKeys.of(lic)
    assert server.zcard(keys.queue) == 0 and server.hlen(keys.tickets) == 0
    assert server.zcard(keys.classes) == 0


def test_cancelling_a_ticket_hands_its_held_seat_on(table, lic):
    holder = acquire(table, lic, "first", NOW)
    leaving = acquire(table, lic, "leaving", NOW + 1, wait=True)
    staying = acquire(table, lic, "staying", NOW + 2, wait=True)
    release(table, lic, holder, "first", NOW + 3)
    assert acquire(table, lic, "staying", NOW + 4, ticket=staying.ticket).kind == "QUEUED"
    assert table.cancel_ticket(lic, leaving.ticket, caller_uid="staying", may_act_for_others=False) == "FORBIDDEN"
    assert table.cancel_ticket(lic, leaving.ticket, caller_uid="leaving", may_act_for_others=False) == "CANCELLED"
    assert table.cancel_ticket(lic, leaving.ticket, caller_uid="leaving", may_act_for_others=False) == "UNKNOWN"
    assert acquire(table, lic, "staying", NOW + 5, ticket=staying.ticket).kind == "GRANTED"


def test_priority_groups_are_served_first(table, lic):
    policy = SeatPolicy(groups=(Group("release-eng", uids=("rel",)),),
                        queue=QueuePolicy(priority=("release-eng",)))
    holder = acquire(table, lic, "first", NOW, policy=policy)
    early = acquire(table, lic, "early", NOW + 1, policy=policy, wait=True)
    rel = acquire(table, lic, "rel", NOW + 2, policy=policy, wait=True)
    assert (early.position, rel.position) == (1, 1)  # rel went ahead of early
    assert [t.uid for t in table.queue(lic)] == ["rel", "early"]
    release(table, lic, holder, "first", NOW + 3)
    assert acquire(table, lic, "early", NOW + 4, policy=policy, ticket=early.ticket).kind == "QUEUED"
    assert acquire(table, lic, "rel", NOW + 5, policy=policy, ticket=rel.ticket).kind == "GRANTED"


def test_a_retried_wait_returns_the_same_ticket_and_the_queue_has_a_bound(table, lic):
    bounded = SeatPolicy(queue=QueuePolicy(max_length=2))
    acquire(table, lic, "first", NOW, policy=bounded)
    one = acquire(table, lic, "one", NOW + 1, policy=bounded, wait=True)
    again = acquire(table, lic, "one", NOW + 2, policy=bounded, wait=True)
    assert again.kind == "QUEUED" and again.ticket == one.ticket and again.queue_length == 1
    acquire(table, lic, "two", NOW + 3, policy=bounded, wait=True)
    full = acquire(table, lic, "three", NOW + 4, policy=bounded, wait=True)
    assert full.kind == "FULL" and full.queue_full is True


def test_the_holders_own_re_acquire_drops_its_ticket(table, lic):
    """A caller that got its seat another way (its own retried acquire) leaves no ticket behind."""
    holder = acquire(table, lic, "first", NOW, seats=2)
    queued_while_full = acquire(table, lic, "second", NOW + 1, seats=2)
    assert queued_while_full.kind == "GRANTED"
    assert acquire(table, lic, "second", NOW + 2, seats=2, ticket=new_ticket_id(lic)).kind == "EXISTING"
    assert holder.kind == "GRANTED"
