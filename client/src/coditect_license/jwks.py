"""The server's root keys (`GET jwks`) that lease tokens may chain to, and their disk cache.

Trust comes from the tool, never from the disk. The cache file (`jwks-<hash>.json` in
the user's cache dir) and every environment variable are the licensee's to write, so
neither can decide which keys count: only root keys whose RFC 7638 thumbprint the tool
pins (`trusted_roots`, compiled into the tool by its vendor) are ever used, and then
the file merely supplies their key material. The file is not an authority on time
either: a `fetched_at` from the future counts as now.

Without pins nothing on disk is trusted: keys come only from the server, fetched in this
process, the cache file is neither read nor written, and whatever needs offline trust
(`License.offline`, a stored borrow while the server is unreachable) refuses.

Keys are refreshed from the network only when a token names a kid not held (rotation)
or the copy is older than `max_age_s` (a key withdrawn after a compromise); never more
often than once per `min_refetch_s` (forged kids cannot make us hammer the server), and
a failed refresh keeps the keys held: offline, the pinned cache is what there is.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Callable

from coditect_license import paths
from coditect_license.errors import LicenseError, TokenInvalid
from coditect_license.tokens import (
    CLOCK_SKEW_S,
    LeaseClaims,
    keys_by_kid,
    pinned_root_keys,
    root_kid_of,
    trusted_root_set,
    verify_lease_token,
)

log = logging.getLogger("coditect_license")

Keys = dict[str, dict[str, Any]]


def cache_file_for(server: str) -> Path:
    digest = hashlib.sha256(server.strip().rstrip("/").encode()).hexdigest()[:16]
    return paths.cache_dir() / f"jwks-{digest}.json"


def _stored_fetch_time(value: Any, now: float) -> float:
    """A `fetched_at` read from disk, never later than `now` (0 when unreadable: stale)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return 0.0
    return min(float(value), now)


class JwksCache:
    """Root keys for verifying lease tokens: pinned ones (from the network or the disk), or,
    without pins, only what the server answered in this process. See the module doc."""

    def __init__(self, server: str | None = None, *, trusted_roots: Iterable[str] | None = None,
                 fetch: Callable[[], dict[str, Any]] | None = None, path: Path | None = None,
                 jwks: dict[str, Any] | None = None, max_age_s: float = 86400.0, min_refetch_s: float = 30.0,
                 clock: Callable[[], float] = time.time):
        """Root keys of `server`, used as `trusted_roots` allows (see the module doc).

        Args:
            server: whose keys (names the cache file).
            trusted_roots: RFC 7638 thumbprints of the root keys to accept (the `kid`s of
                the vendor's `GET /jwks`); None pins nothing (see the module doc).
            fetch: gets the jwks from the network (None: no network).
            path: the cache file (default: per server in the user's cache dir); used only with pins.
            jwks: root keys handed over by the tool itself: nothing is read, written or
                fetched, and they are an anchor like pins (filtered by them, if given too).
            clock: the wall clock (Unix seconds), for the cache's age.

        Raises ValueError for malformed `trusted_roots`."""
        self.trusted_roots: frozenset[str] | None = trusted_root_set(trusted_roots)
        self._fetch = fetch
        self._given = self._admit(jwks) if jwks is not None else None
        # The cache file is licensee-writable: it is touched only when pins decide which of its keys count.
        self.path = None if self.trusted_roots is None else path or (cache_file_for(server) if server else None)
        self.max_age_s = max_age_s
        self.min_refetch_s = min_refetch_s
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: Keys | None = None
        self._fetched_at = 0.0      # wall clock of the keys held
        self._last_attempt = -1e18  # monotonic, of the last network attempt

    @property
    def anchored(self) -> bool:
        """True when the tool gave trust anchors (pins or keys): only then may anything verify offline."""
        return self.trusted_roots is not None or self._given is not None

    @property
    def fetched_at(self) -> float:
        """When the keys held were fetched (Unix seconds; never in the future)."""
        with self._lock:
            self._load()
            return self._fetched_at

    def _may_trust(self, kid: str) -> bool:
        # The server's kid is the key's thumbprint: a kid no pin names is never worth a request.
        return self.trusted_roots is None or kid in self.trusted_roots

    def _admit(self, jwks: Mapping[str, Any]) -> Keys:
        """The keys of a jwks document this cache may use: the pinned ones, or all without pins."""
        if self.trusted_roots is not None:
            return pinned_root_keys(jwks, self.trusted_roots)
        return keys_by_kid(jwks)

    def _read_cache_file(self) -> tuple[Keys, float]:
        stored = paths.read_json(self.path) if self.path is not None else None
        if not isinstance(stored, dict) or not isinstance(stored.get("jwks"), dict):
            return {}, 0.0
        return self._admit(stored["jwks"]), _stored_fetch_time(stored.get("fetched_at"), self._clock())

    def _load(self) -> Keys:
        if self._given is not None:
            return self._given
        if self._keys is None:
            self._keys, self._fetched_at = self._read_cache_file()
        return self._keys

    def refresh(self) -> bool:
        """Fetch the jwks now; True if the keys were updated (failures are logged, not raised)."""
        if self._fetch is None or self._given is not None:
            return False
        self._last_attempt = time.monotonic()
        try:
            jwks = self._fetch()
        except LicenseError as exc:
            log.info("jwks refresh failed (keeping the keys held): %s", exc)
            return False
        keys = self._admit(jwks)
        if not keys:
            if self.trusted_roots is not None:
                log.warning("the server publishes none of the pinned root keys (trusted_roots); "
                            "is this tool's list of trusted roots current?")
            else:
                log.warning("the server published an empty jwks; keeping the keys held")
            return False
        self._keys, self._fetched_at = keys, self._clock()
        self._write_cache_file(jwks)
        return True

    def _write_cache_file(self, jwks: Mapping[str, Any]) -> None:
        # The whole document as served: another tool on this machine may pin other versions.
        if self.path is None:
            return
        published = [key for key in jwks.get("keys", []) if isinstance(key, dict)]
        try:
            paths.write_json(self.path, {"fetched_at": self._fetched_at, "jwks": {"keys": published}})
        except OSError as exc:
            log.warning("cannot write the jwks cache %s: %s", self.path, exc)

    def keys(self, want_kid: str | None = None) -> Keys:
        """The usable root keys, refreshed first if `want_kid` is unknown or the copy is old."""
        with self._lock:
            keys = self._load()
            if self._given is None and self._fetch is not None:
                stale = self._clock() - self._fetched_at > self.max_age_s
                missing = want_kid is not None and want_kid not in keys and self._may_trust(want_kid)
                if (stale or missing) and time.monotonic() - self._last_attempt >= self.min_refetch_s:
                    self.refresh()
                    keys = self._load()
            return dict(keys)

    def verify(self, token: str, *, now: float | None = None, leeway_s: int = CLOCK_SKEW_S,
               **expect: Any) -> LeaseClaims:
        """Verify a lease token (the network only to learn a new root kid, or without pins)."""
        kid = root_kid_of(token)
        if kid is None:
            raise TokenInvalid("not a lease token")
        return verify_lease_token(token, self.keys(kid), now=now, leeway_s=leeway_s,
                                  trusted_roots=self.trusted_roots, **expect)
