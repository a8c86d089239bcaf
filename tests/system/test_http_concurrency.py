"""Invariants 1 and 2 over real HTTP: a real gunicorn server, concurrent clients."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from shared.seats import LicenseKeys


async def _burst(base_url: str, requests: list[tuple[str, dict]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(client.post("/acquire", json=body, headers=headers) for headers, body in requests))


def test_500_concurrent_acquires_grant_exactly_the_seats(function_server, make_license, id_token, rt):
    # given a 10-seat license and 500 tools starting at once, each on its own machine
    lic = make_license(seats=10)
    requests = [({"Authorization": f"Bearer {id_token(f'user-{i}')}"}, {"license_key": lic.key, "hardware_id": f"hw-{i}"})
                for i in range(500)]

    # when they all acquire concurrently over HTTP
    responses = asyncio.run(_burst(function_server.base_url, requests))

    # then exactly 10 win and 490 are told the license is full
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 10, 409: 490}, statuses
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"NO_SEAT_AVAILABLE"}
    winners = {r.json()["session_id"] for r in responses if r.status_code == 201}
    # and Redis and Firestore agree on who holds the seats
    leases = {m.decode() for m in rt.redis.zrange(LicenseKeys.of(lic.license_id).leases, 0, -1)}
    durable = {s.id for s in rt.store.active_sessions(lic.license_id)}
    assert winners == leases == durable and len(winners) == 10


def test_concurrent_acquires_by_one_user_and_machine_hold_one_seat(function_server, make_license, id_token, rt):
    lic = make_license(seats=5)
    headers = {"Authorization": f"Bearer {id_token('same-user')}"}
    responses = asyncio.run(_burst(function_server.base_url, [(headers, {"license_key": lic.key, "hardware_id": "box"})] * 30))

    assert Counter(r.status_code for r in responses) == {201: 1, 200: 29}
    assert len({r.json()["session_id"] for r in responses}) == 1
    assert rt.redis.zcard(LicenseKeys.of(lic.license_id).leases) == 1
    assert len(rt.store.active_sessions(lic.license_id)) == 1


def test_every_function_answers_at_its_path(function_server):
    with httpx.Client(base_url=function_server.base_url, timeout=10) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/health/ready").json()["status"] == "ok"
        assert client.get("/jwks").json()["keys"]
        for name in ("acquire", "heartbeat", "release", "validate"):
            answer = client.post(f"/{name}", json={})
            assert answer.status_code == 401, name  # no redirect, no HTML: the JSON envelope
            assert answer.json()["error"]["code"] == "UNAUTHENTICATED"
        assert client.get("/nope").status_code == 404
