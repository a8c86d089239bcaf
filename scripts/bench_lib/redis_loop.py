"""The seat library's cost over raw Redis: EVALSHA of the acquire script, two ways.

    bare  redis-py `evalsha` of the very script text SeatTable registers
    lib   `SeatTable.acquire` (register_script's EVALSHA + reply decoding + outcome)

Both loops make the same grants (fresh hardware and session ids, prepared before the
clock starts) on a throwaway license id, on the stack's Redis, one call at a time, and
their keys are deleted afterwards. Rounds alternate bare/lib so drift hits both alike,
and the best round of each counts.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import redis

from shared.seats.seat_table import SeatTable, _load_script, license_keys

_BASE32 = "0123456789abcdefghjkmnpqrstvwxyz"
TTL_MS = 360_000


def _throwaway_license_id() -> str:
    # Shaped like a real id (lic_ + 20 base32) but from a random draw no license has.
    return "lic_" + "".join(secrets.choice(_BASE32) for _ in range(20))


@dataclass
class EvalRates:
    calls: int
    rounds: int
    bare_per_s: list[float]
    lib_per_s: list[float]

    # Best round of each: on a shared 2-core machine noise only ever slows a round down.
    @property
    def bare(self) -> float:
        return max(self.bare_per_s)

    @property
    def lib(self) -> float:
        return max(self.lib_per_s)

    @property
    def ratio(self) -> float:
        return self.lib / self.bare if self.bare else 0.0


def _loop(kind: str, client: redis.Redis, table: SeatTable, sha: str, calls: int) -> float:
    license_id = _throwaway_license_id()
    keys = license_keys(license_id)
    try:
        generation = table.generation(license_id)
        now_ms = int(time.time() * 1000)
        hardware = [f"bench-hw-{i}" for i in range(calls)]
        sessions = [f"{license_id}.{secrets.token_urlsafe(16)}" for _ in range(calls)]
        uid, max_seats = "bench-redis-loop", calls + 1
        granted = 0
        if kind == "bare":
            started = time.perf_counter()
            for i in range(calls):
                reply = client.evalsha(sha, 5, *keys, now_ms, TTL_MS, max_seats, generation, uid, hardware[i],
                                       sessions[i])
                granted += reply[0] == b"GRANTED"
            elapsed = time.perf_counter() - started
        else:
            started = time.perf_counter()
            for i in range(calls):
                outcome = table.acquire(license_id, generation=generation, now_ms=now_ms, ttl_ms=TTL_MS,
                                        max_seats=max_seats, uid=uid, hardware_id=hardware[i],
                                        new_session_id=sessions[i])
                granted += outcome.kind == "GRANTED"
            elapsed = time.perf_counter() - started
        if granted != calls:
            raise RuntimeError(f"{kind} loop: {granted} of {calls} acquires granted; the figures would be wrong")
        return calls / elapsed
    finally:
        client.delete(*keys)


def measure(redis_url: str, *, calls: int, rounds: int = 3) -> EvalRates:
    client = redis.Redis.from_url(redis_url)
    try:
        table = SeatTable(client)
        sha = client.script_load(_load_script("acquire_seat"))
        for kind in ("bare", "lib"):  # warm the connection, the script cache and the interpreter
            _loop(kind, client, table, sha, min(calls, 5000))
        bare, lib = [], []
        for _ in range(rounds):
            bare.append(_loop("bare", client, table, sha, calls))
            lib.append(_loop("lib", client, table, sha, calls))
        return EvalRates(calls, rounds, bare, lib)
    finally:
        client.close()


def redis_server_version(redis_url: str) -> str:
    client = redis.Redis.from_url(redis_url)
    try:
        return str(client.info("server").get("redis_version", "?"))
    finally:
        client.close()
