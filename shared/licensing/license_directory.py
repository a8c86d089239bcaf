"""License metadata for the hot path, cached without going stale.

A steady-state acquire reads nothing from Firestore: the key index and license
documents are cached in-process. Freshness comes from Redis: each license has a
*generation* that admins bump on every change, the cache remembers the generation it
loaded under, and every seat script compares the two atomically and answers STALE on
a mismatch, so a suspension or seat change is seen by the very next request on every
instance. A TTL bounds memory and the life of an entry regardless.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cachetools

from shared.clock import Clock
from shared.domain import License
from shared.errors import LicenseNotFound
from shared.licensing.license_keys import MalformedKey, canonical_key, key_hash
from shared.licensing.ports import DurableRecord, SeatLedger


@dataclass(frozen=True)
class CachedLicense:
    license: License
    generation: str


class LicenseDirectory:
    """Finds licenses by key or id, from cache when the generation allows."""

    def __init__(self, store: DurableRecord, seats: SeatLedger, clock: Clock, *, ttl_s: int, max_entries: int = 50_000):
        self._store = store
        self._seats = seats
        timer = lambda: clock.now_ms() / 1000  # noqa: E731 - the cache's clock is the service's
        self._by_id: cachetools.TTLCache[str, CachedLicense] = cachetools.TTLCache(max_entries, ttl_s, timer=timer)
        # Key -> license id never changes while the key exists; revocation makes the
        # license load fail, so a longer life is safe here.
        self._id_by_key: cachetools.TTLCache[str, str] = cachetools.TTLCache(max_entries, ttl_s * 10, timer=timer)
        self._lock = threading.Lock()

    def by_key(self, license_key: str) -> CachedLicense:
        """The license a presented key opens; LicenseNotFound for typos and unknown keys."""
        try:
            hashed = key_hash(canonical_key(license_key))
        except MalformedKey as exc:
            raise LicenseNotFound(str(exc)) from None
        with self._lock:
            license_id = self._id_by_key.get(hashed)
        if license_id is None:
            license_id = self._store.license_id_for_key(hashed)
            if license_id is None:
                raise LicenseNotFound("no license has this key")
            with self._lock:
                self._id_by_key[hashed] = license_id
        found = self.by_id(license_id)
        if found is None or found.license.key_hash != hashed:  # revocation: SeatService._check_admitted
            raise LicenseNotFound("no license has this key")
        return found

    def by_id(self, license_id: str, *, fresh: bool = False) -> CachedLicense | None:
        """The license with this id, or None; `fresh` skips the cache (after a STALE)."""
        if not fresh:
            with self._lock:
                cached = self._by_id.get(license_id)
            if cached is not None:
                return cached
        # Generation first, then the document: a change landing in between makes the
        # next script call answer STALE instead of trusting old data.
        generation = self._seats.generation(license_id)
        license = self._store.get_license(license_id)
        if license is None:
            with self._lock:
                self._by_id.pop(license_id, None)
            return None
        entry = CachedLicense(license, generation)
        with self._lock:
            self._by_id[license_id] = entry
        return entry
