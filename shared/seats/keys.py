"""Every Redis key name the seat table and the sweep use, in one place.

Per license, eleven keys share the hash tag `{<license_id>}`, so every script runs in one
cluster slot; scripts receive them in the order of `LicenseKeys.in_script_order()` (the
prelude, lua/_prelude.lua, says what each holds). Keys that span licenses (the sweep's
index shards, its lock, the recovery epoch, counters) carry tags of their own.
"""

from __future__ import annotations

import zlib
from dataclasses import astuple, dataclass

HOLD_PREFIX = "hold:"
"""A member of a license's lease set that counts a seat after its session ended (release_seat)."""


@dataclass(frozen=True)
class LicenseKeys:
    leases: str
    holders: str
    sessions: str
    ended: str
    gen: str
    unverified: str
    usage: str
    origin: str
    classes: str
    queue: str
    tickets: str

    @classmethod
    def of(cls, license_id: str) -> LicenseKeys:
        tag = "{" + license_id + "}"
        return cls(*(f"seat:{tag}:{part}" for part in
                     ("leases", "holders", "sessions", "ended", "gen", "unverified", "usage", "origin",
                                                  "classes", "queue", "tickets")))

    def in_script_order(self) -> list[str]:
        """KEYS[1..11] of every seat script."""
        return list(astuple(self))

    @property
    def rebuild_lock(self) -> str:
        """Held by the one process rebuilding this license's table (no script touches it)."""
        return self.origin.removesuffix("origin") + "rebuilding"


INDEX_SHARDS = 16


def index_key(shard: int) -> str:
    """One shard of the index of licenses that have leases (each shard its own slot)."""
    return f"sweep:{{idx-{shard:02d}}}:licenses"


def index_shard(license_id: str) -> int:
    return zlib.crc32(license_id.encode()) % INDEX_SHARDS


REVIVED_COUNTER = "sweep:{stats}:revived"
"""Leases revived since the last sweep (reported by it)."""
SWEEP_LOCK = "sweep:{lock}"
SWEEP_FENCE = "sweep:{lock}:fence"
"""Grows by one per lock attempt: each holder's fencing token."""
AUDIT_CURSOR = "sweep:{epoch}:audit"
"""The session id the sweep's rotating check of Firestore's active sessions reached."""
RECOVERY_CURSOR = "sweep:{epoch}:cursor"
"""`<run id> <session id>`: where an unfinished recovery walk in that process stopped."""
RECOVERY_EPOCH = "sweep:{epoch}"
"""The run id of the Redis process in which the sweep last walked every active session
back in; any other value (or none) means this Redis may have lost data since."""


@dataclass(frozen=True)
class SignalKeys:
    """What the seat functions note for conflict detection (shared/domain/anomalies.py), per
    license, under its hash tag: sorted sets of JSON members scored with when each was last
    seen, and one hash of when each was first seen."""

    pairs: str  # [uid, hardware id]
    addresses: str  # [session id, uid, client address]
    grants: str  # [uid, session id]
    first: str  # "<kind> <member>" -> first seen (ms)

    @classmethod
    def of(cls, license_id: str) -> SignalKeys:
        tag = "{" + license_id + "}"
        return cls(*(f"sig:{tag}:{part}" for part in ("pairs", "addresses", "grants", "first")))


SIGNALS_INDEX = "sig:{index}"
"""Licenses with notes, scored with their latest: the sweep evaluates those noted since its last pass."""
SIGNALS_PASS = "sig:{index}:pass"
"""Held (SET NX PX) by the sweep that makes this pass: one every few minutes."""
SIGNALS_THROUGH = "sig:{index}:through"
"""Up to when (ms) every license's notes were evaluated."""


def machine_key_use_slot(key_id: str, window: int) -> str:
    """Taken (SET NX) by the one instance that records a machine key's last use in this
    window (a minute of the service's clock: shared/auth/machine_keys.py)."""
    return f"mkey:{{{key_id}}}:used:{window}"
