"""The seat library's cost over raw Redis: EVALSHA of the acquire script, two ways.

    bare  redis-py `evalsha` of the very script text SeatTable registers, with the keys
          and arguments SeatTable.acquire passes
    lib   `SeatTable.acquire` (register_script's EVALSHA + reply decoding + outcome)

Both loops make the same grants (fresh hardware and session ids, prepared before the
clock starts) on a throwaway license id, on the stack's Redis, one call at a time, and
their keys are deleted afterwards. Rounds alternate bare/lib so drift hits both alike,
and the best round of each counts.

The bare loop repeats by hand what SeatTable.acquire sends, so it is checked twice: its
key and argument counts against the highest KEYS[n] and ARGV[n] the script names (its
contract comment names every one), and every reply must be GRANTED. A script whose
contract changed stops the benchmark with the reason instead of measuring refusals.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis

from shared.seats import LicenseKeys, SeatTable
from shared.seats.redis_calls import load_script

SCRIPT = "acquire_seat"
_BASE32 = "0123456789abcdefghjkmnpqrstvwxyz"
TTL_MS = 360_000
UID = "bench-redis-loop"


class RedisLoopError(RuntimeError):
    """The raw-Redis comparison cannot measure what it claims: a call was refused or the script changed."""


def _throwaway_license_id() -> str:
    # Shaped like a real id (lic_ + 20 base32) but from a random draw no license has.
    return "lic_" + "".join(secrets.choice(_BASE32) for _ in range(20))


def acquire_args(*, now_ms: int, max_seats: int, generation: str, uid: str, hardware_id: str,
                 session_id: str) -> list[Any]:
    """ARGV of acquire_seat.lua, in the order and form SeatTable.acquire sends them (no per-user limit,
    no seat policy, no queue; what administrators see of the lease: an e-mail, as a person's acquire has)."""
    day = time.strftime("%Y-%m-%d", time.gmtime(now_ms // 1000))  # the script's usage counters are per UTC day
    shown = json.dumps({"email": f"{uid}@example.com"}, separators=(",", ":"))
    return [now_ms, TTL_MS, max_seats, generation, uid, hardware_id, session_id, day, 0, "", "", "", "0", "", shown]


def script_arity(script: str) -> tuple[int, int]:
    """(keys, arguments) a Lua script reads: the highest KEYS[n] and ARGV[n] it names."""

    def highest(name: str) -> int:
        return max((int(n) for n in re.findall(rf"\b{name}\[(\d+)\]", script)), default=0)

    return highest("KEYS"), highest("ARGV")


def check_contract(script: str) -> None:
    """Raise RedisLoopError unless the bare loop passes as many keys and arguments as `script` reads."""
    want_keys, want_args = script_arity(script)
    keys = len(LicenseKeys.of("lic_contract_check").in_script_order())
    args = len(acquire_args(now_ms=0, max_seats=1, generation="", uid="", hardware_id="", session_id=""))
    if (keys, args) != (want_keys, want_args):
        raise RedisLoopError(
            f"bare loop: {SCRIPT}.lua reads {want_keys} keys and {want_args} arguments but the bare loop passes "
            f"{keys} and {args}: make acquire_args() in scripts/bench_lib/redis_loop.py send what "
            f"SeatTable.acquire sends"
        )


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
    """Make `calls` grants one way and return calls per second; raise RedisLoopError at the first refusal."""
    license_id = _throwaway_license_id()
    keys = LicenseKeys.of(license_id).in_script_order()
    try:
        generation = table.generation(license_id)
        now_ms = int(time.time() * 1000)
        table.restore(license_id, [], now_ms=now_ms, ttl_ms=TTL_MS, complete=True)  # trusted, as after its rebuild
        hardware = [f"bench-hw-{i}" for i in range(calls)]
        sessions = [f"{license_id}.{secrets.token_urlsafe(16)}" for _ in range(calls)]
        max_seats = calls + 1
        try:
            if kind == "bare":
                keys_and_args = [
                    [*keys, *acquire_args(now_ms=now_ms, max_seats=max_seats, generation=generation, uid=UID,
                                          hardware_id=hardware[i], session_id=sessions[i])]
                    for i in range(calls)
                ]
                started = time.perf_counter()
                for i in range(calls):
                    reply = client.evalsha(sha, len(keys), *keys_and_args[i])
                    if reply[0] != b"GRANTED":
                        raise RedisLoopError(f"bare loop: call {i + 1} of {calls} answered {reply!r}, not GRANTED "
                                             f"(see the contract comment of {SCRIPT}.lua)")
                elapsed = time.perf_counter() - started
            else:
                started = time.perf_counter()
                for i in range(calls):
                    outcome = table.acquire(license_id, generation=generation, now_ms=now_ms, ttl_ms=TTL_MS,
                                            max_seats=max_seats, uid=UID, hardware_id=hardware[i],
                                            new_session_id=sessions[i])
                    if outcome.kind != "GRANTED":
                        raise RedisLoopError(f"lib loop: call {i + 1} of {calls} answered {outcome}, not GRANTED")
                elapsed = time.perf_counter() - started
        except redis.exceptions.ResponseError as exc:  # the script itself failed, e.g. on a missing argument
            raise RedisLoopError(f"{kind} loop: {SCRIPT}.lua failed: {exc}") from exc
        return calls / elapsed
    finally:
        client.delete(*keys)


def measure(client: redis.Redis, *, calls: int, rounds: int = 3) -> EvalRates:
    """Alternate `rounds` rounds of `calls` grants each way, after one warm-up round each.

    Raises:
        RedisLoopError: the bare loop no longer matches the script, or a call was refused.
    """
    script = load_script(SCRIPT)
    check_contract(script)
    table = SeatTable(client)
    sha = client.script_load(script)
    for kind in ("bare", "lib"):  # warm the connection, the script cache and the interpreter
        _loop(kind, client, table, sha, min(calls, 5000))
    bare, lib = [], []
    for _ in range(rounds):
        bare.append(_loop("bare", client, table, sha, calls))
        lib.append(_loop("lib", client, table, sha, calls))
    return EvalRates(calls, rounds, bare, lib)


def redis_server_version(client: redis.Redis) -> str:
    return str(client.info("server").get("redis_version", "?"))
