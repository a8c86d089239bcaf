"""What one benchmark run needs in the stack: a fresh tenant, its licenses, user tokens.

Everything is created through the service's own provisioning (the same code the
operator CLI uses), in the stack's Firestore emulator, under a tenant named after the
run, so runs never share seats with each other or with the demo license.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
from dataclasses import dataclass

from bench_lib.stack_facts import Stack
from devstack.dev_tokens import emulator_id_token

TOKEN_LIFETIME_S = 6 * 3600  # the emulator does not check exp; still, outlive any run


@dataclass(frozen=True)
class Identity:
    uid: str
    token: str

    def as_plan(self) -> dict:
        return {"uid": self.uid, "token": self.token}


@dataclass(frozen=True)
class Fixtures:
    run_id: str
    tenant_id: str
    ref_license_keys: list[str]
    ref_max_seats: list[int]
    sat_license_key: str
    sat_max_seats: int
    sat_policy_license_key: str
    """Same seats, with every seat policy on (BENCH_POLICY): what the policies cost an acquire."""
    users: list[Identity]
    sat_identities: list[Identity]


BENCH_POLICY = {
    # README's example ("Seat policies"): every part on. The bench's callers are in no group
    # (their tokens carry no `groups` claim, their emails are @bench.example.com), so each
    # acquire evaluates groups, counts the reservation, and takes an unreserved seat.
    "groups": [{"name": "ci", "claim": {"name": "groups", "value": "ci"}},
               {"name": "interns", "domains": ["interns.example.com"]}],
    "exclude": {"users": ["blocked@example.com"], "hardware": ["stolen-laptop"]},
    "reserve": [{"group": "ci", "seats": 5}],
    "max": [{"group": "interns", "seats": 3}],
    "overdraft_seats": 2,
    "queue": {},
}


def new_run_id() -> str:
    return secrets.token_hex(3)


def point_env_at(stack: Stack) -> None:
    """This process's clients (provisioning, redis) talk to the running stack, configured as
    its functions are (Redis's AUTH string and CA through its Secret Manager stand-in)."""
    os.environ.update(stack.env)


def create_fixtures(stack: Stack, run_id: str, *, users: int, licenses: int, sat_connections: int,
                    sat_max_seats: int) -> Fixtures:
    """A tenant `bench-<run id>` with `licenses` reference licenses and one saturation license.

    Each reference license gets the users assigned to it plus 10 % headroom, so a 409
    there can only come from the server's accounting, never from a full license.
    """
    point_env_at(stack)
    from shared.domain import SeatPolicy
    from shared.licensing.provisioning import LicenseSpec
    from shared.runtime import runtime

    provisioning = runtime().provisioning
    # runtime() sends the library's INFO logs to stdout; the bench's stdout is its table.
    logging.getLogger().setLevel(logging.WARNING)
    tenant_id = f"bench-{run_id}"
    provisioning.create_tenant(f"Benchmark run {run_id}", tenant_id=tenant_id, actor="scripts/bench")
    licenses = max(1, min(licenses, users))
    per_license = [users // licenses + (1 if i < users % licenses else 0) for i in range(licenses)]
    ref_keys, ref_seats = [], []
    for count in per_license:
        seats = count + max(1, math.ceil(count * 0.1))
        issued = provisioning.create_license(
            LicenseSpec(tenant_id=tenant_id, max_seats=seats, tier="pro", features=("build",)), actor="scripts/bench"
        )
        ref_keys.append(issued.license_key)
        ref_seats.append(seats)
    sat = provisioning.create_license(
        LicenseSpec(tenant_id=tenant_id, max_seats=sat_max_seats, tier="pro", features=("build",)),
        actor="scripts/bench",
    )
    sat_policy = provisioning.create_license(
        LicenseSpec(tenant_id=tenant_id, max_seats=sat_max_seats, tier="pro", features=("build",),
                    policy=SeatPolicy.from_json(BENCH_POLICY)),
        actor="scripts/bench",
    )

    def identity(name: str) -> Identity:
        uid = f"bench-{run_id}-{name}"
        return Identity(uid, emulator_id_token(stack.project_id, uid, email=f"{name}@bench.example.com",
                                               lifetime_s=TOKEN_LIFETIME_S))

    return Fixtures(
        run_id=run_id,
        tenant_id=tenant_id,
        ref_license_keys=ref_keys,
        ref_max_seats=ref_seats,
        sat_license_key=sat.license_key,
        sat_max_seats=sat_max_seats,
        sat_policy_license_key=sat_policy.license_key,
        users=[identity(f"user{i:04d}") for i in range(users)],
        sat_identities=[identity(f"conn{i:03d}") for i in range(sat_connections)],
    )


def firestore_document_counts(stack: Stack, collections: tuple[str, ...] = ("sessions", "events")) -> dict[str, int]:
    """Documents per collection in the stack's Firestore emulator.

    Reported because the emulator's writes get slower as a collection grows (it copies
    the collection's document map on every new document), so acquire/release figures
    depend on how much earlier runs left behind.
    """
    point_env_at(stack)
    from google.cloud import firestore

    client = firestore.Client(project=stack.project_id)
    try:
        return {name: int(client.collection(name).count().get()[0][0].value) for name in collections}
    finally:
        client.close()
