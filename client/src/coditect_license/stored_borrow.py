"""A borrowed seat stored on this machine: kept, forgotten, verified offline, resumed.

The borrow token lives in the user's cache dir (borrows.py: named by a hash of the
license key, 0600), so later runs of the tool, and `Lease.offline(key)`, can use it.
A stored borrow is resumed like this: (pinned) its token is verified offline first;
then, if the server answers, one heartbeat on the stored session must confirm it is
still live (a heartbeat never shortens a lease, so it costs the borrow nothing). A
session the server ended (returned, force-released) forgets the file and the tool
acquires normally; a server that cannot be reached leaves the verified file alone to
serve, offline. Without pinned roots nothing stored here is trusted offline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from coditect_license import borrows
from coditect_license.errors import (
    Forbidden,
    LicenseError,
    NoLease,
    SessionExpired,
    SessionNotFound,
    TokenExpired,
    TokenInvalid,
    TrustNotPinned,
)
from coditect_license.jwks import JwksCache
from coditect_license.tokens import CLOCK_SKEW_S, LeaseClaims, trusted_root_set, unverified_claims
from coditect_license.transport import NO_RETRY, ApiClient

log = logging.getLogger("coditect_license")


def missing_pins(what: str) -> TrustNotPinned:
    return TrustNotPinned(f"{what} needs pinned root keys: pass trusted_roots=[...] (the RFC 7638 thumbprints of "
                          "the vendor's root keys, the `kid`s of its GET /jwks); without them nothing stored on "
                          "this machine can be trusted")


def parse_time(value: Any) -> float | None:
    """Unix seconds of an RFC 3339 string (None if absent/unparseable)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _session_to_confirm(record: dict[str, Any], hardware_id: str) -> str | None:
    """The session a stored borrow names if it says it is this machine's, else None.

    Unverified: it only chooses what to ask the server, whose answer alone counts."""
    try:
        claims = unverified_claims(record["token"])
    except TokenInvalid:
        return None
    session_id = claims.get("sub")
    if claims.get("hw") != hardware_id or not isinstance(session_id, str) or not session_id:
        return None
    return session_id


@dataclass(frozen=True)
class ResumedBorrow:
    """A stored borrow to hold: its token and claims, and how its validity is counted."""

    token: str
    claims: LeaseClaims
    borrowed_until: float        # Unix seconds
    offline_s: float | None      # None: confirmed by the server, the token's own deadlines;
                                 # else unconfirmed (offline): valid this long by this machine's clock


class StoredBorrow:
    """The stored borrow of one license key on this machine, for one server."""

    def __init__(self, key: str, server: str, hardware_id: str, jwks: JwksCache, issuer: str | None):
        self.path = borrows.borrow_file(key)
        self._server = server
        self._hardware_id = hardware_id
        self._jwks = jwks
        self._issuer = issuer

    def save(self, token: str, claims: LeaseClaims, borrowed_until: Any) -> None:
        borrows.save(self.path, {
            "server": self._server, "session_id": claims.session_id, "token": token,
            "license_id": claims.license_id, "hardware_id": self._hardware_id, "borrowed_until": borrowed_until,
        })

    def forget(self) -> bool:
        return borrows.forget(self.path)

    def resume(self, api: ApiClient, verify_fresh: Callable[[str], LeaseClaims]) -> ResumedBorrow | None:
        """The stored borrow to use now; None when there is none to use (acquire normally).

        Pinned: the stored token is verified offline first. Then one heartbeat asks the
        server whether the session is still live (see the module doc). Refusals other
        than "session ended" and "another user's session" are raised, as an acquire's
        would be."""
        record = borrows.load(self.path)
        if record is None or str(record.get("server", "")).rstrip("/") != self._server:
            return None
        stored_claims = self._verified_offline(record)
        if self._jwks.anchored and stored_claims is None:
            return None
        session_id = stored_claims.session_id if stored_claims else _session_to_confirm(record, self._hardware_id)
        if session_id is None:
            return None
        try:
            token = record.get("token")  # the server checks it: proof of the lease after it lost its table
            body = api.post("heartbeat", {"session_id": session_id, **({"lease_token": token} if token else {})},
                            retry=NO_RETRY)
        except (SessionExpired, SessionNotFound) as exc:
            log.info("the stored borrow's session has ended (%s); acquiring a seat", exc.code)
            self.forget()
            return None
        except Forbidden as exc:
            if exc.code != Forbidden.code:
                raise  # suspended, or the like: refused as an acquire would be
            # Another user's borrow on this machine: theirs to keep; this user takes a seat of their own.
            log.info("the stored borrow belongs to another user; acquiring a seat")
            return None
        except LicenseError as exc:
            if not exc.retryable:  # the server answered, and refused
                raise
            # The server could not be asked: no answer, a 5xx or 429, or no ID token to ask with (offline).
            if stored_claims is None:
                raise missing_pins("using a borrowed seat while the server cannot be reached") from exc
            return self._offline(record, stored_claims)
        return self._confirmed(body, session_id, verify_fresh)

    def _verified_offline(self, record: dict[str, Any]) -> LeaseClaims | None:
        """The stored borrow's claims, verified offline under the pins; None if unusable or unpinned."""
        if not self._jwks.anchored:
            return None
        try:
            return self._jwks.verify(record["token"], issuer=self._issuer, hardware_id=self._hardware_id)
        except TokenExpired:
            self.forget()
        except TokenInvalid as exc:
            log.warning("ignoring the stored borrow: %s", exc)
        return None

    def _confirmed(self, body: dict[str, Any], session_id: str,
                   verify_fresh: Callable[[str], LeaseClaims]) -> ResumedBorrow | None:
        """The server confirmed the session: the borrow, with its fresh token (stored in place of the old)."""
        claims = verify_fresh(body["token"])
        if claims.session_id != session_id:
            raise TokenInvalid("the server's token is for another session")
        if not claims.borrowed:
            # The borrow ends within a lease ttl: a plain seat now, which acquire returns as it is.
            self.forget()
            return None
        self.save(body["token"], claims, body.get("expires_at"))
        log.info("using the borrowed seat %s, confirmed by the server", claims.session_id)
        return ResumedBorrow(body["token"], claims, float(claims.expires_at), offline_s=None)

    def _offline(self, record: dict[str, Any], claims: LeaseClaims) -> ResumedBorrow:
        """The server is unreachable: the verified stored borrow alone serves."""
        # Offline, this machine's clock is all there is: the same rule as verification.
        remaining_s = claims.valid_until + CLOCK_SKEW_S - time.time()
        log.info("using the borrowed seat %s offline (until %s)", claims.session_id, record.get("borrowed_until"))
        return ResumedBorrow(record["token"], claims,
                             parse_time(record.get("borrowed_until")) or float(claims.expires_at),
                             offline_s=remaining_s)


def verify_offline(key: str, *, server: str | None, hardware_id: str, trusted_roots: Iterable[str] | None,
                   jwks: dict[str, Any] | None, now: float | None) -> LeaseClaims:
    """The stored borrow of `key`, verified with no network under the pinned root keys (Lease.offline)."""
    if trusted_root_set(trusted_roots) is None and jwks is None:
        raise missing_pins("License.offline")
    record = borrows.load(borrows.borrow_file(key))
    if record is None:
        raise NoLease("no borrowed seat is stored for this license key")
    stored_server = str(record.get("server", ""))
    if server and stored_server and server.rstrip("/") != stored_server:
        raise NoLease("the stored borrow is from another server")
    cache = JwksCache(server or stored_server, trusted_roots=trusted_roots, jwks=jwks)
    return cache.verify(record["token"], now=now, hardware_id=hardware_id)
