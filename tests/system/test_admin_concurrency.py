"""Administrators changing one license at once over HTTP: every change holds.

A change is a read-modify-write of the license in one Firestore transaction, so two
PATCHes of different fields that overlap both land (neither overwrites the other with
the copy it read).
"""

from __future__ import annotations

import asyncio

import httpx


async def _both(base_url: str, requests: list[tuple[str, dict]], license_id: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        return await asyncio.gather(*(client.patch(f"/admin/licenses/{license_id}", json=body,
                                                   headers={"Authorization": f"Bearer {token}"})
                                      for token, body in requests))


def test_concurrent_patches_of_different_fields_all_hold(function_server, make_license, id_token, tenant):
    # given a license, its vendor (owner) and its tenant's administrator
    lic = make_license(seats=2)
    owner = id_token("vendor", role="owner")
    admin = id_token("tenant-admin", role="admin", tenant=tenant)

    # (3 rounds: each overlap costs the emulator a second or two to settle which transaction retries)
    for round_ in range(1, 4):
        # when the vendor changes the seats while the administrator narrows sessions per user
        answers = asyncio.run(_both(function_server.base_url, [
            (owner, {"max_seats": 2 + round_}),
            (admin, {"max_sessions_per_user": round_}),
        ], lic.license_id))

        # then both are answered OK and both changes are in the license
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        stored = httpx.get(f"{function_server.base_url}/admin/licenses/{lic.license_id}",
                           headers={"Authorization": f"Bearer {owner}"}, timeout=10).json()["license"]
        assert (stored["max_seats"], stored["max_sessions_per_user"]) == (2 + round_, round_)

    # and the audit log has every change, with what it changed
    events = httpx.get(f"{function_server.base_url}/admin/events", params={"license": lic.license_id, "limit": 100},
                       headers={"Authorization": f"Bearer {owner}"}, timeout=10).json()["events"]
    changed = sorted(field for e in events if e["type"] == "license.update" for field in e["details"]["changes"])
    assert changed == ["max_seats"] * 3 + ["max_sessions_per_user"] * 3
