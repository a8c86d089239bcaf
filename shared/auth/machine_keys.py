"""Machine keys (`Authorization: Bearer ck_...`) turned into the caller (a machine Principal).

The seat functions accept a machine key in place of a Firebase ID token
(shared/domain/machine_keys.py says what one is). Checking one:
    shape        the key names its id (ck_<id>_<secret>); anything else is 401 before any read
    record       the key's document, read by id, its stored SHA-256 compared in constant time
    cache        kept in process for CACHE_TTL_S (30 s) per key, found or not, so a busy
                 build farm costs one Firestore read per key, instance and half minute
    revocation   a revoked key is refused (401) by every instance within CACHE_TTL_S of the
                 revocation: each re-reads a key at most that long after it last read it
    last used    recorded at most once a minute per key: each instance asks at most once a
                 minute, and of those, only the one that takes the minute's slot in Redis
                 (SET NX of a key per minute of the service's clock, `first_use`) writes
                 Firestore. A failed write is logged and forgotten: it is a statistic,
                 never a reason to refuse a request.
Rate limits (per key: RATE_LIMIT_MACHINE_KEY) are charged by shared/http like the per-user one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

import cachetools

from shared.clock import Clock
from shared.domain import MachineKey, Principal
from shared.domain.machine_keys import REVOCATION_BOUND_S, key_id_of, machine_key_hash, machine_uid
from shared.errors import ServiceError, Unauthenticated

log = logging.getLogger(__name__)


class MachineKeyRecords(Protocol):
    def get_machine_key(self, key_id: str) -> MachineKey | None: ...

    def record_machine_key_use(self, key_id: str, used_ms: int) -> None: ...


class MachineKeyVerifier:
    CACHE_TTL_S = REVOCATION_BOUND_S
    """The longest a revoked key keeps working on an instance that had just read it."""
    LAST_USED_EVERY_MS = 60_000
    _CACHE_SIZE = 10_000

    def __init__(self, records: MachineKeyRecords, clock: Clock, *,
                 first_use: Callable[[str, int], bool] | None = None):
        """`first_use(key_id, window_ms)`: True for the one caller (of every instance) that
        claims this window's recording of the key's use (None: every instance records)."""
        self._records = records
        self._clock = clock
        self._first_use = first_use
        timer = lambda: clock.now_ms() / 1000  # noqa: E731 - the cache's clock is the service's
        # By the key's hash (never the key): the record, or None for a key that opens nothing.
        self._cache: cachetools.TTLCache[str, MachineKey | None] = cachetools.TTLCache(
            self._CACHE_SIZE, self.CACHE_TTL_S, timer=timer)
        self._recorded_ms: dict[str, int] = {}
        self._lock = threading.Lock()

    def verify(self, key: str) -> Principal:
        key_id = key_id_of(key)
        if key_id is None:
            raise Unauthenticated("this is not a machine key (ck_ followed by its id and secret)")
        hashed = machine_key_hash(key)
        with self._lock:
            cached = hashed in self._cache
            found = self._cache.get(hashed)
        if not cached:
            record = self._records.get_machine_key(key_id)
            found = record if record is not None and record.opens(key) else None
            with self._lock:
                self._cache[hashed] = found
        if found is None:
            raise Unauthenticated("this machine key is not valid: unknown, or mistyped")
        if found.revoked:
            raise Unauthenticated("this machine key was revoked; ask the license's administrator for a new one")
        self._note_use(found.id)
        return Principal(uid=machine_uid(found.id), tenant=found.tenant_id, machine=found.grant())

    def _note_use(self, key_id: str) -> None:
        now = self._clock.now_ms()
        with self._lock:
            if now - self._recorded_ms.get(key_id, -self.LAST_USED_EVERY_MS) < self.LAST_USED_EVERY_MS:
                return
            self._recorded_ms[key_id] = now
            if len(self._recorded_ms) > self._CACHE_SIZE:  # bounded: forget the oldest half
                for stale in sorted(self._recorded_ms, key=self._recorded_ms.__getitem__)[: self._CACHE_SIZE // 2]:
                    del self._recorded_ms[stale]
        try:
            if self._first_use is None or self._first_use(key_id, self.LAST_USED_EVERY_MS):
                self._records.record_machine_key_use(key_id, now)
        except ServiceError as exc:
            log.warning("machine key %s: last use not recorded (%s)", key_id, exc.message)
        except Exception:  # noqa: BLE001 - a statistic never fails the request it describes
            log.exception("machine key %s: last use not recorded", key_id)
