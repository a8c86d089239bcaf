"""Seat policies under a real race over HTTP (issue 14): 500 tools at once on a license with
reservations, a group maximum, an overdraft and a queue; then waiters served in order.

Policies are set with the LicenseSpec the admin API builds (SeatPolicy.from_json). The
invariants: never more than max + overdraft holders, reserved seats only to members, the
group never over its maximum, and Redis and Firestore agree on who holds a seat.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from shared.domain import SeatPolicy
from shared.seats import LicenseKeys

SEATS, OVERDRAFT = 20, 2
POLICY = {
    "groups": [{"name": "ci", "claim": {"name": "groups", "value": "ci"}},
               {"name": "interns", "domains": ["interns.example.com"]}],
    "reserve": [{"group": "ci", "seats": 5}],
    "max": [{"group": "interns", "seats": 3}],
    "overdraft_seats": OVERDRAFT,
    "queue": {"max_length": 50, "claim_window_s": 30, "poll_interval_s": 10},
}


def _caller(i: int) -> tuple[str, dict]:
    """Every 10th a CI runner, every 7th an intern, the rest ordinary users; half ask to wait."""
    if i % 10 == 0:
        return f"runner-{i}", {"groups": ["ci"], "email": f"runner-{i}@ci.example.com"}
    if i % 7 == 0:
        return f"intern-{i}", {"email": f"intern-{i}@interns.example.com", "email_verified": True}
    return f"user-{i}", {"email": f"user-{i}@example.com"}


async def _post_all(base_url: str, calls: list[tuple[str, dict, dict]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(calls), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(client.post(path, json=body, headers=headers) for path, headers, body in calls))


def test_500_acquirers_never_exceed_the_policy_and_redis_and_firestore_agree(function_server, make_license,
                                                                              id_token, rt):
    lic = make_license(seats=SEATS, policy=SeatPolicy.from_json(POLICY))
    callers = [_caller(i) for i in range(500)]
    calls = [("/acquire", {"Authorization": f"Bearer {id_token(uid, **claims)}"},
              {"license_key": lic.key, "hardware_id": f"hw-{i}", "wait": i % 2 == 0})
             for i, (uid, claims) in enumerate(callers)]

    responses = asyncio.run(_post_all(function_server.base_url, calls))

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 202, 409}, statuses
    granted = [(callers[i][0], r.json()) for i, r in enumerate(responses) if r.status_code == 201]
    assert len(granted) == SEATS + OVERDRAFT
    assert sum(body["overage"] for _, body in granted) == OVERDRAFT
    reserved = [uid for uid, body in granted if body.get("reserved_for") == "ci"]
    assert len(reserved) == 5 and all(uid.startswith("runner-") for uid in reserved)
    assert sum(uid.startswith("intern-") for uid, _ in granted) <= 3
    assert statuses[202] == 50  # the queue's bound; the other waiters were refused
    refused = [r.json()["error"] for r in responses if r.status_code == 409]
    assert {e["code"] for e in refused} <= {"NO_SEAT_AVAILABLE", "GROUP_SEAT_LIMIT"}

    winners = {body["session_id"] for _, body in granted}
    keys = LicenseKeys.of(lic.license_id)
    leases = {m.decode() for m in rt.redis.zrange(keys.leases, 0, -1)}
    durable = {s.id for s in rt.store.active_sessions(lic.license_id)}
    assert winners == leases == durable
    assert rt.redis.zcard(keys.queue) == 50


def test_waiters_are_served_in_arrival_order_over_http(function_server, make_license, id_token):
    lic = make_license(seats=1, policy=SeatPolicy.from_json({"queue": {"poll_interval_s": 5, "claim_window_s": 30}}))
    holder_token = id_token("holder")
    with httpx.Client(base_url=function_server.base_url, timeout=30) as client:
        def post(path: str, uid_token: str, body: dict) -> httpx.Response:
            return client.post(path, json=body, headers={"Authorization": f"Bearer {uid_token}"})

        held = post("/acquire", holder_token, {"license_key": lic.key, "hardware_id": "h"}).json()
        tokens = {f"w{i:02d}": id_token(f"w{i:02d}") for i in range(20)}
        tickets = {}
        for uid, token in tokens.items():
            answer = post("/acquire", token, {"license_key": lic.key, "hardware_id": "h", "wait": True})
            assert answer.status_code == 202, answer.text
            tickets[uid] = answer.json()["ticket"]
        served, current = [], ("holder", held["session_id"], holder_token)
        for _ in range(20):
            assert post("/release", current[2], {"session_id": current[1]}).status_code == 200
            for uid in sorted(tickets):
                answer = post("/acquire", tokens[uid], {"license_key": lic.key, "hardware_id": "h",
                                                        "ticket": tickets[uid]})
                if answer.status_code == 201:
                    served.append(uid)
                    current = (uid, answer.json()["session_id"], tokens[uid])
                    del tickets[uid]
                else:
                    assert answer.status_code == 202, answer.text
        assert served == sorted(tokens)
