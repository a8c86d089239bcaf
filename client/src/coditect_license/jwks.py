"""The server's root keys (`GET jwks`), cached on disk so tokens verify offline.

One file per server in the user's cache dir (`jwks-<sha256(server)[:16]>.json`). The
cache is refreshed from the network only when a token names a kid it does not hold
(rotation), or when it is older than `max_age_s` (a key withdrawn after a compromise);
never more often than once per `min_refetch_s` (forged kids cannot make us hammer the
server), and a failed refresh keeps the cached keys: offline, the cache is the truth.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from coditect_license import paths
from coditect_license.errors import LicenseError, TokenInvalid
from coditect_license.tokens import CLOCK_SKEW_S, LeaseClaims, keys_by_kid, root_kid_of, verify_lease_token

log = logging.getLogger("coditect_license")


def cache_file_for(server: str) -> Path:
    digest = hashlib.sha256(server.strip().rstrip("/").encode()).hexdigest()[:16]
    return paths.cache_dir() / f"jwks-{digest}.json"


class JwksCache:
    def __init__(self, server: Optional[str] = None, *, fetch: Optional[Callable[[], Dict[str, Any]]] = None,
                 path: Optional[Path] = None, jwks: Optional[Dict[str, Any]] = None,
                 max_age_s: float = 86400.0, min_refetch_s: float = 30.0):
        """`fetch` gets the jwks from the network (None: offline only); `jwks` pins the keys
        (then nothing is read, written or fetched)."""
        self._fetch = fetch
        self._pinned = keys_by_kid(jwks) if jwks is not None else None
        self.path = path or (cache_file_for(server) if server else None)
        self.max_age_s = max_age_s
        self.min_refetch_s = min_refetch_s
        self._lock = threading.Lock()
        self._keys: Optional[Dict[str, Dict[str, Any]]] = None
        self._fetched_at = 0.0      # wall clock of the cached copy
        self._last_attempt = -1e18  # monotonic, of the last network attempt

    def _load(self) -> Dict[str, Dict[str, Any]]:
        if self._pinned is not None:
            return self._pinned
        if self._keys is None:
            stored = paths.read_json(self.path) if self.path else None
            if isinstance(stored, dict) and isinstance(stored.get("jwks"), dict):
                self._keys = keys_by_kid(stored["jwks"])
                self._fetched_at = float(stored.get("fetched_at", 0))
            else:
                self._keys = {}
        return self._keys

    def refresh(self) -> bool:
        """Fetch the jwks now; True if the cache was updated (failures are logged, not raised)."""
        if self._fetch is None or self._pinned is not None:
            return False
        self._last_attempt = time.monotonic()
        try:
            jwks = self._fetch()
        except LicenseError as exc:
            log.info("jwks refresh failed (using the cached keys): %s", exc)
            return False
        keys = keys_by_kid(jwks)
        if not keys:
            log.warning("the server published an empty jwks; keeping the cached keys")
            return False
        self._keys, self._fetched_at = keys, time.time()
        if self.path is not None:
            try:
                paths.write_json(self.path, {"fetched_at": self._fetched_at, "jwks": {"keys": list(keys.values())}})
            except OSError as exc:
                log.warning("cannot write the jwks cache %s: %s", self.path, exc)
        return True

    def keys(self, want_kid: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
        """The root keys, refreshed first if `want_kid` is unknown or the copy is old."""
        with self._lock:
            keys = self._load()
            if self._pinned is None and self._fetch is not None:
                stale = time.time() - self._fetched_at > self.max_age_s
                missing = want_kid is not None and want_kid not in keys
                if (stale or missing) and time.monotonic() - self._last_attempt >= self.min_refetch_s:
                    self.refresh()
                    keys = self._load()
            return dict(keys)

    def verify(self, token: str, *, now: Optional[float] = None, leeway_s: int = CLOCK_SKEW_S,
               **expect: Any) -> LeaseClaims:
        """Verify a lease token offline (the network only to learn a new root kid)."""
        kid = root_kid_of(token)
        if kid is None:
            raise TokenInvalid("not a lease token")
        return verify_lease_token(token, self.keys(kid), now=now, leeway_s=leeway_s, **expect)
