"""A floating seat held for the life of a tool: acquire, heartbeat, release, borrow.

    with License(key, server=URL, token_provider=provider, trusted_roots=ROOT_THUMBPRINTS) as lease:
        run_the_tool(features=lease.features)

States (`lease.state`):

    IDLE ──acquire()──> ACTIVE ──heartbeat fails──> RETRYING ──past exp──> OFFLINE_GRACE
                          ^  ^                         │                       │ past exp + grace
                          │  └──── heartbeat ok ───────┴───────────────────────┤
                          │                                                    v
                          └────────── regained (heartbeat or re-acquire) ──── LOST
    ACTIVE ──borrow()──> BORROWED (no heartbeats; valid offline until the borrow ends)
    any ──close()──> CLOSED (seat released, unless BORROWED: the borrow keeps it)

The heartbeat thread beats every `heartbeat_interval_s` (from the server) minus up to
15 % jitter. A failed beat (network, timeout, 5xx, 429, ID token trouble) is retried
with exponential backoff; a 410/404 on the session (the server lost or ended it)
re-acquires at once with the same hardware id. The lease stays usable while its signed
token is valid: `exp`, plus the license's signed offline `grace` when the server cannot
be reached. Past that, or when the server refuses (suspended, revoked, no seat on
re-acquire), the lease is LOST and `on_lost` is called; the thread keeps trying and
calls `on_regained` if the seat comes back. `on_expiring(lease, seconds_left)` warns
once per episode when the lease is about to run out without renewal.

Lease deadlines are measured on the monotonic clock from the moment each token
arrived (its `exp - iat`), so a wrong or changing local clock cannot stretch or cut a
lease. Callbacks run on the heartbeat thread; their exceptions are logged, not raised.

Trust (`trusted_roots`): tokens are accepted only under root keys whose RFC 7638
thumbprints the tool pins. Why the pins are a parameter of the tool and nothing else:
the jwks cache file, the borrow file and every environment variable are the licensee's
to write, so only what the vendor compiles into the tool can be a trust anchor. Without
pins, tokens verify only with keys the server sent to this process, and a stored borrow
is used only after the server confirms it: never offline.

A stored borrow is resumed like this: (pinned) its token is verified offline first; then,
if the server answers, one heartbeat on the stored session must confirm it is still
live (a heartbeat never shortens a lease, so it costs the borrow nothing). A session
the server ended (returned, force-released) forgets the file and acquires normally; a
server that cannot be reached leaves the verified file alone to serve, offline.
"""

from __future__ import annotations

import atexit
import enum
import logging
import os
import random
import signal
import socket
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional

from coditect_license import borrows, fingerprint
from coditect_license._version import __version__
from coditect_license.errors import (
    Forbidden,
    Gone,
    LicenseError,
    NoLease,
    NoSeatAvailable,
    NotFound,
    SessionExpired,
    SessionNotFound,
    TokenExpired,
    TokenInvalid,
    TrustNotPinned,
)
from coditect_license.identity import ProviderLike, as_provider
from coditect_license.jwks import JwksCache
from coditect_license.tokens import CLOCK_SKEW_S, LeaseClaims, split, trusted_root_set, unverified_claims
from coditect_license.transport import NO_RETRY, ApiClient, RetryPolicy

log = logging.getLogger("coditect_license")

ENV_SERVER = "CODITECT_LICENSE_SERVER"


class LeaseState(str, enum.Enum):
    IDLE = "IDLE"
    ACQUIRING = "ACQUIRING"
    ACTIVE = "ACTIVE"
    RETRYING = "RETRYING"
    OFFLINE_GRACE = "OFFLINE_GRACE"
    LOST = "LOST"
    BORROWED = "BORROWED"
    CLOSED = "CLOSED"

    def __str__(self) -> str:
        return self.value


_VALID_STATES = (LeaseState.ACTIVE, LeaseState.RETRYING, LeaseState.OFFLINE_GRACE, LeaseState.BORROWED)
_RENEWING_STATES = (LeaseState.ACTIVE, LeaseState.RETRYING, LeaseState.OFFLINE_GRACE, LeaseState.LOST)

Callback = Callable[..., None]


# -- process-wide release on exit and on SIGTERM / SIGINT -----------------------------
_open_leases: "weakref.WeakSet[License]" = weakref.WeakSet()
_registry_lock = threading.RLock()  # re-entered by a signal handler on the main thread
_atexit_installed = False
_previous_handlers: Dict[int, Any] = {}


def _release_all(reason: str) -> None:
    with _registry_lock:
        leases = list(_open_leases)
    for lease in leases:
        try:
            lease._release_for_exit(reason)
        except Exception:  # never let one lease stop the others (or the exit)
            log.exception("releasing a lease at %s failed", reason)


def _on_signal(signum: int, frame: Any) -> None:
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if previous is signal.SIG_IGN:
        return  # the host ignores this signal: the process goes on, and so does the lease
    if callable(previous):
        # The host's own handler (or Python's KeyboardInterrupt) decides whether the
        # process ends; if it does, `with` blocks and atexit release the seat.
        previous(signum, frame)
        return
    # Default action = die: release first, then die exactly as the default would.
    _release_all(f"signal {signum}")
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_exit_hooks(handle_signals: bool) -> None:
    global _atexit_installed
    with _registry_lock:
        if not _atexit_installed:
            atexit.register(_release_all, "exit")
            _atexit_installed = True
        if not handle_signals or threading.current_thread() is not threading.main_thread():
            return
        for name in ("SIGTERM", "SIGINT", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is None or signum in _previous_handlers:
                continue
            try:
                current = signal.getsignal(signum)
                if current is _on_signal:
                    continue
                signal.signal(signum, _on_signal)
                _previous_handlers[signum] = current
            except (ValueError, OSError):  # not the main thread of the main interpreter, or unsupported
                pass


_unpinned_warning_lock = threading.Lock()
_unpinned_warning_given = False


def _warn_unpinned_once() -> None:
    """One warning per process: a License without trusted_roots has no offline trust."""
    global _unpinned_warning_given
    with _unpinned_warning_lock:
        if _unpinned_warning_given:
            return
        _unpinned_warning_given = True
    log.warning("no trusted root keys are pinned (trusted_roots / --trusted-root): lease tokens are verified only "
                "with keys the server sends, and a borrowed seat is usable only while the server confirms it")


def _missing_pins(what: str) -> TrustNotPinned:
    return TrustNotPinned(f"{what} needs pinned root keys: pass trusted_roots=[...] (the RFC 7638 thumbprints of "
                          "the vendor's root keys, the `kid`s of its GET /jwks); without them nothing stored on "
                          "this machine can be trusted")


def _cannot_ask_now(error: LicenseError) -> bool:
    """The server could not be asked: no answer, a 5xx or 429, or no ID token to ask with (offline)."""
    return error.retryable


def _session_to_confirm(record: Dict[str, Any], hardware_id: str) -> Optional[str]:
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


def _parse_time(value: Any) -> Optional[float]:
    """Unix seconds of an RFC 3339 string (None if absent/unparseable)."""
    if not isinstance(value, str):
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class License:
    """One seat of a license, kept alive in the background. See the module doc.

    `trusted_roots`: the RFC 7638 thumbprints (base64url SHA-256) of every root key
    version the vendor accepts, i.e. the `kid`s of its deployment's `GET /jwks`; list
    a new version before the server rotates to it. Only tokens rooted in these keys are
    accepted; without it, see "Trust" in the module doc. `jwks`: the root keys
    themselves, handed over by the tool (an anchor too). `server` must be https://
    (plain http:// only on loopback): ValueError otherwise.
    """

    def __init__(self, key: str, *, server: Optional[str] = None, token_provider: Optional[ProviderLike] = None,
                 trusted_roots: Optional[Iterable[str]] = None,
                 hardware_id: Optional[str] = None, client_version: str = "", hostname: Optional[str] = None,
                 on_lost: Optional[Callback] = None, on_regained: Optional[Callback] = None,
                 on_expiring: Optional[Callback] = None, on_state_change: Optional[Callback] = None,
                 expiring_warning_s: Optional[float] = None, handle_signals: bool = True,
                 release_at_exit: bool = True, use_borrow: bool = True, retry: Optional[RetryPolicy] = None,
                 timeout_s: float = 10.0, jwks: Optional[Dict[str, Any]] = None, issuer: Optional[str] = None,
                 verify: Any = True, transport: Any = None):
        if not key or not key.strip():
            raise ValueError("a license key is required")
        self.key = key.strip()
        server = server or os.environ.get(ENV_SERVER)
        if not server:
            raise ValueError(f"the license server URL is required (server=... or {ENV_SERVER})")
        self.server = server.rstrip("/")
        provider = as_provider(token_provider) if token_provider is not None else None
        self._api = ApiClient(self.server, provider, timeout_s=timeout_s, retry=retry or RetryPolicy(), verify=verify,
                              transport=transport)
        self._jwks = JwksCache(self.server, trusted_roots=trusted_roots, fetch=lambda: self._api.jwks(), jwks=jwks)
        if not self._jwks.anchored:
            _warn_unpinned_once()
        self.hardware_id = hardware_id or fingerprint.hardware_id()
        self._client_info = {"version": (client_version or f"coditect-license/{__version__}")[:64],
                             "hostname": (hostname if hostname is not None else socket.gethostname())[:255]}
        self._issuer = issuer
        self.on_lost, self.on_regained, self.on_expiring = on_lost, on_regained, on_expiring
        self.on_state_change = on_state_change
        self._expiring_warning_s = expiring_warning_s
        self._handle_signals = handle_signals
        self._release_at_exit = release_at_exit
        self._use_borrow = use_borrow

        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._state = LeaseState.IDLE
        self._session_id: Optional[str] = None
        self._token: Optional[str] = None
        self._claims: Optional[LeaseClaims] = None
        self._expires_mono = 0.0       # monotonic instant of the signed exp
        self._valid_until_mono = 0.0   # ... of exp + grace
        self._interval_s = 60.0
        self._next_beat = 0.0
        self._failures = 0
        self._warned = False
        self._lost_reported = False
        self.seats: Optional[Dict[str, int]] = None
        self.license_info: Dict[str, Any] = {}
        self.borrowed_until: Optional[float] = None
        self.last_error: Optional[LicenseError] = None
        self.heartbeats = 0
        self.reacquisitions = 0

    # -- public view -------------------------------------------------------------------
    @property
    def state(self) -> LeaseState:
        return self._state

    @property
    def valid(self) -> bool:
        """True while the tool may run: a lease whose signed validity has not run out."""
        with self._lock:
            if self._state not in _VALID_STATES:
                return False
            return time.monotonic() < self._valid_until_mono

    @property
    def session_id(self) -> Optional[str]:
        return self._session_id

    @property
    def token(self) -> Optional[str]:
        """The current signed lease token (a compact JWS; see tokens.py)."""
        return self._token

    @property
    def claims(self) -> Optional[LeaseClaims]:
        return self._claims

    @property
    def features(self) -> List[str]:
        return list(self._claims.features) if self._claims else []

    @property
    def tier(self) -> Optional[str]:
        return self._claims.tier if self._claims else None

    @property
    def license_id(self) -> Optional[str]:
        return self._claims.license_id if self._claims else None

    @property
    def expires_at(self) -> Optional[int]:
        """The signed expiry of the current token (Unix seconds, server clock)."""
        return self._claims.expires_at if self._claims else None

    @property
    def valid_until(self) -> Optional[int]:
        """exp + the license's offline grace (Unix seconds, server clock)."""
        return self._claims.valid_until if self._claims else None

    @property
    def heartbeat_interval_s(self) -> float:
        return self._interval_s

    def seconds_left(self) -> float:
        """Seconds until the lease's validity (exp + grace) runs out, by the monotonic clock."""
        return max(0.0, self._valid_until_mono - time.monotonic())

    def has_feature(self, name: str) -> bool:
        return name in self.features

    def __repr__(self) -> str:
        return f"<License {self.license_id or '?'} session={self._session_id} state={self._state.value}>"

    # -- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> "License":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def acquire(self, *, wait_s: float = 0.0) -> "License":
        """Take a seat (or resume a stored borrow) and start heartbeating.

        `wait_s` > 0 waits up to that long for a seat when all are taken (honouring the
        server's Retry-After); otherwise NoSeatAvailable is raised at once.
        """
        with self._lock:
            if self._state in _VALID_STATES or self._state == LeaseState.LOST:
                return self
            if self._state == LeaseState.CLOSED:
                self._stop = threading.Event()
            self._set_state(LeaseState.ACQUIRING)
        try:
            if self._use_borrow and self._resume_borrow():
                self._register()
                self._start_thread()
                return self
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    body = self._api.post("acquire", self._acquire_body())
                    break
                except NoSeatAvailable as exc:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise
                    # Retry-After is when the earliest lease *expires*; a holder may release
                    # sooner, so look again at least every 5 s.
                    pause = min(left, max(1.0, min(exc.retry_after or 5.0, 5.0) * random.uniform(0.8, 1.0)))
                    log.info("no seat free (%s/%s); waiting %.0f s", exc.seats_used, exc.seats_max, pause)
                    time.sleep(pause)
            try:
                self._accept(body, new_session=True)
            except BaseException:
                # granted, but unusable here (e.g. its token did not verify): give it back
                self._release_quietly(body.get("session_id"))
                raise
        except BaseException:
            with self._lock:
                self._set_state(LeaseState.IDLE)
            raise
        self._register()
        self._start_thread()
        return self

    def close(self) -> bool:
        """Stop heartbeating and release the seat (a borrowed seat stays borrowed).

        Never raises; True if the server confirmed the release (or nothing was held)."""
        with self._lock:
            previous = self._state
            if previous == LeaseState.CLOSED:
                return True
            self._set_state(LeaseState.CLOSED)
            session_id = self._session_id
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # A beat still in flight is harmless once stop is set (a late answer is
            # ignored), so exits are not held up by a slow server.
            thread.join(timeout=2)
        with _registry_lock:
            _open_leases.discard(self)
        if previous == LeaseState.BORROWED or session_id is None or previous == LeaseState.IDLE:
            return True
        try:
            self._api.post("release", {"session_id": session_id},
                           retry=RetryPolicy(attempts=3, base_s=0.3, cap_s=2.0, deadline_s=6.0),
                           fresh_connection=True)
            return True
        except LicenseError as exc:
            self.last_error = exc
            log.warning("release of %s failed (the lease frees itself at its expiry): %s", session_id, exc)
            return False

    release = close

    def detach(self) -> Dict[str, Any]:
        """Stop heartbeating *without* releasing (the CLI's `acquire`): the seat is held
        until its lease expires or someone releases the returned session."""
        with self._lock:
            record = {"server": self.server, "session_id": self._session_id, "token": self._token,
                      "hardware_id": self.hardware_id}
            self._set_state(LeaseState.CLOSED)
        self._stop.set()
        self._wake.set()
        with _registry_lock:
            _open_leases.discard(self)
        return record

    def heartbeat_now(self) -> None:
        """Ask the heartbeat thread to beat at once (returns without waiting)."""
        with self._lock:
            self._next_beat = 0.0
        self._wake.set()

    # -- borrowing -------------------------------------------------------------------
    def borrow(self, duration_s: int) -> LeaseClaims:
        """Check the seat out for `duration_s`: no heartbeats, valid offline until then.

        The borrow token is stored in the user's cache dir; later runs of the tool (or
        `License.offline(key)`) use it (offline only with `trusted_roots`). BorrowNotAllowed
        (403) if the license allows no borrowing, InvalidRequest (400,
        `details["max_borrow_s"]`) if longer than it allows."""
        with self._lock:
            if self._state == LeaseState.BORROWED:
                raise LicenseError("the seat is already borrowed", code="ALREADY_BORROWED")
            if self._session_id is None or self._state not in _RENEWING_STATES:
                raise NoLease("acquire a seat before borrowing it")
            session_id = self._session_id
        body = self._api.post("borrow", {"session_id": session_id, "duration_s": int(duration_s)},
                              retry=RetryPolicy(attempts=3, deadline_s=20.0))
        claims = self._verify_fresh(body["token"])
        self._install_borrow(body["token"], claims, _parse_time(body.get("borrowed_until")))
        self._store_borrow(body["token"], claims, body.get("borrowed_until"))
        self._wake.set()  # the thread now only watches the borrow's end (on_expiring / on_lost)
        return claims

    def return_borrow(self) -> str:
        """Give a borrowed seat back early; the lease is CLOSED. Returns the server's status.

        The stored borrow token is deleted *before* the server is asked, so a crash in
        between can never leave a usable token for a seat the server freed. If the server
        cannot be told, the error is raised and the lease stays BORROWED in this process
        (call again); the server counts the seat until the borrow's end anyway."""
        with self._lock:
            if self._state != LeaseState.BORROWED or self._session_id is None:
                raise NoLease("no borrowed seat to return")
            session_id = self._session_id
        borrows.forget(borrows.borrow_file(self.key))
        body = self._api.post("borrow/return", {"session_id": session_id}, retry=RetryPolicy(attempts=3, deadline_s=20.0))
        with self._lock:
            self._set_state(LeaseState.CLOSED)
        self._stop.set()
        self._wake.set()
        with _registry_lock:
            _open_leases.discard(self)
        return str(body.get("status", "returned"))

    @classmethod
    def offline(cls, key: str, *, server: Optional[str] = None, hardware_id: Optional[str] = None,
                trusted_roots: Optional[Iterable[str]] = None, jwks: Optional[Dict[str, Any]] = None,
                now: Optional[float] = None) -> LeaseClaims:
        """The stored borrow of `key`, verified with no network, under the pinned root keys.

        Raises TrustNotPinned (neither `trusted_roots` nor `jwks` given: nothing on this
        machine can be trusted), NoLease (nothing stored), TokenExpired (the borrow ended),
        TokenInvalid (forged, not under a pinned root, other machine, other server)."""
        if trusted_root_set(trusted_roots) is None and jwks is None:
            raise _missing_pins("License.offline")
        record = borrows.load(borrows.borrow_file(key))
        if record is None:
            raise NoLease("no borrowed seat is stored for this license key")
        stored_server = str(record.get("server", ""))
        if server and stored_server and server.rstrip("/") != stored_server:
            raise NoLease("the stored borrow is from another server")
        cache = JwksCache(server or stored_server, trusted_roots=trusted_roots, jwks=jwks)
        return cache.verify(record["token"], now=now, hardware_id=hardware_id or fingerprint.hardware_id())

    # -- internals: borrows ------------------------------------------------------------------
    def _resume_borrow(self) -> bool:
        """Use a stored borrow of this key; False when there is none to use (acquire normally).

        Pinned: the stored token is verified offline first. Then one heartbeat asks the
        server whether the session is still live (see the module doc). Refusals other
        than "session ended" and "another user's session" are raised, as an acquire's
        would be."""
        path = borrows.borrow_file(self.key)
        record = borrows.load(path)
        if record is None or str(record.get("server", "")).rstrip("/") != self.server:
            return False
        stored_claims = self._verified_stored_borrow(record, path)
        if self._jwks.anchored and stored_claims is None:
            return False
        session_id = stored_claims.session_id if stored_claims else _session_to_confirm(record, self.hardware_id)
        if session_id is None:
            return False
        try:
            body = self._api.post("heartbeat", {"session_id": session_id}, retry=NO_RETRY)
        except (SessionExpired, SessionNotFound) as exc:
            log.info("the stored borrow's session has ended (%s); acquiring a seat", exc.code)
            borrows.forget(path)
            return False
        except Forbidden as exc:
            if exc.code != Forbidden.code:
                raise  # suspended, or the like: refused as an acquire would be
            # Another user's borrow on this machine: theirs to keep; this user takes a seat of their own.
            log.info("the stored borrow belongs to another user; acquiring a seat")
            return False
        except LicenseError as exc:
            if not _cannot_ask_now(exc):
                raise
            if stored_claims is None:
                raise _missing_pins("using a borrowed seat while the server cannot be reached") from exc
            self._resume_offline(record, stored_claims)
            return True
        return self._resume_confirmed(body, session_id, path)

    def _verified_stored_borrow(self, record: Dict[str, Any], path: Any) -> Optional[LeaseClaims]:
        """The stored borrow's claims, verified offline under the pins; None if unusable or unpinned."""
        if not self._jwks.anchored:
            return None
        try:
            return self._jwks.verify(record["token"], issuer=self._issuer, hardware_id=self.hardware_id)
        except TokenExpired:
            borrows.forget(path)
        except TokenInvalid as exc:
            log.warning("ignoring the stored borrow: %s", exc)
        return None

    def _resume_confirmed(self, body: Dict[str, Any], session_id: str, path: Any) -> bool:
        """The server confirmed the session: resume the borrow with its fresh token."""
        claims = self._verify_fresh(body["token"])
        if claims.session_id != session_id:
            raise TokenInvalid("the server's token is for another session")
        if not claims.borrowed:
            # The borrow ends within a lease ttl: a plain seat now, which acquire returns as it is.
            borrows.forget(path)
            return False
        self._install_borrow(body["token"], claims, float(claims.expires_at))
        self._store_borrow(body["token"], claims, body.get("expires_at"))
        log.info("using the borrowed seat %s, confirmed by the server", claims.session_id)
        return True

    def _resume_offline(self, record: Dict[str, Any], claims: LeaseClaims) -> None:
        """The server is unreachable: the verified stored borrow alone serves."""
        with self._lock:
            # Offline, this machine's clock is all there is: the same rule as verification.
            self._install_token(record["token"], claims)
            remaining = claims.valid_until + CLOCK_SKEW_S - time.time()
            self._expires_mono = self._valid_until_mono = time.monotonic() + max(0.0, remaining)
            self.borrowed_until = _parse_time(record.get("borrowed_until")) or float(claims.expires_at)
            self._set_state(LeaseState.BORROWED)
        log.info("using the borrowed seat %s offline (until %s)", claims.session_id, record.get("borrowed_until"))

    def _install_borrow(self, token: str, claims: LeaseClaims, borrowed_until: Optional[float]) -> None:
        with self._lock:
            self._install_token(token, claims)
            self.borrowed_until = borrowed_until or float(claims.expires_at)
            self._set_state(LeaseState.BORROWED)
            self._warned = False

    def _store_borrow(self, token: str, claims: LeaseClaims, borrowed_until: Any) -> None:
        borrows.save(borrows.borrow_file(self.key), {
            "server": self.server, "session_id": claims.session_id, "token": token,
            "license_id": claims.license_id, "hardware_id": self.hardware_id, "borrowed_until": borrowed_until,
        })

    # -- internals: tokens and state -------------------------------------------------------
    def _acquire_body(self) -> Dict[str, Any]:
        return {"license_key": self.key, "hardware_id": self.hardware_id, "client": self._client_info}

    def _verify_fresh(self, token: str) -> LeaseClaims:
        """Verify a token the server just sent: chain and signatures; time checks are made
        at the token's own iat (this machine's clock plays no part, see the module doc)."""
        try:
            iat = float(split(token)[1].get("iat", 0))
        except TokenInvalid:
            iat = 0.0
        return self._jwks.verify(token, now=iat, leeway_s=0, issuer=self._issuer, hardware_id=self.hardware_id)

    def _install_token(self, token: str, claims: LeaseClaims) -> None:
        now = time.monotonic()
        self._token, self._claims, self._session_id = token, claims, claims.session_id
        self._expires_mono = now + max(0, claims.expires_at - claims.issued_at)
        self._valid_until_mono = self._expires_mono + claims.grace_s

    def _accept(self, body: Dict[str, Any], *, new_session: bool) -> None:
        claims = self._verify_fresh(body["token"])
        with self._lock:
            if self._state == LeaseState.CLOSED:
                return
            self._install_token(body["token"], claims)
            interval = body.get("heartbeat_interval_s")
            if isinstance(interval, (int, float)) and interval > 0:
                self._interval_s = float(interval)
            if new_session:
                self.seats = body.get("seats") if isinstance(body.get("seats"), dict) else self.seats
                if isinstance(body.get("license"), dict):
                    self.license_info = body["license"]
            self._failures = 0
            self._warned = False
            self.last_error = None
            self._schedule_beat()
            was_lost = self._state == LeaseState.LOST and self._lost_reported
            self._lost_reported = False
            self._set_state(LeaseState.ACTIVE)
        if was_lost:
            self._fire(self.on_regained, self)

    def _schedule_beat(self) -> None:
        lease_s = max(1.0, self._expires_mono - time.monotonic())
        interval = min(self._interval_s, lease_s * 0.8)
        self._next_beat = time.monotonic() + interval * random.uniform(0.85, 1.0)

    def _set_state(self, new: LeaseState) -> None:
        old = self._state
        if old == new:
            return
        self._state = new
        log.info("lease %s: %s -> %s", self._session_id, old.value, new.value)
        if self.on_state_change is not None:
            self._fire(self.on_state_change, self, old, new)

    def _fire(self, callback: Optional[Callback], *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("lease callback %r failed", callback)

    def _warning_window(self) -> float:
        if self._expiring_warning_s is not None:
            return self._expiring_warning_s
        lease_s = (self._claims.expires_at - self._claims.issued_at) if self._claims else 60
        return max(2.0, min(60.0, lease_s / 3))

    def _update_by_time(self) -> None:
        """Move between RETRYING / OFFLINE_GRACE / LOST as the clock runs; fire callbacks."""
        fire_lost = False
        expiring = None
        with self._lock:
            now = time.monotonic()
            state = self._state
            if state in _VALID_STATES:
                if now >= self._valid_until_mono:
                    self._set_state(LeaseState.LOST)
                    if state == LeaseState.BORROWED:
                        self._session_id = None  # the borrow ended: the next beat re-acquires
                        self._next_beat = now
                        borrows.forget(borrows.borrow_file(self.key))
                elif state != LeaseState.BORROWED:
                    if now >= self._expires_mono:
                        self._set_state(LeaseState.OFFLINE_GRACE)
                    elif self._failures:
                        self._set_state(LeaseState.RETRYING)
                left = self._valid_until_mono - now
                if self._state != LeaseState.LOST and left <= self._warning_window() and not self._warned and (
                        self._failures or self._state == LeaseState.BORROWED):
                    self._warned = True
                    expiring = left
            if self._state == LeaseState.LOST and not self._lost_reported:
                self._lost_reported = True
                fire_lost = True
        if expiring is not None:
            self._fire(self.on_expiring, self, expiring)
        if fire_lost:
            self._fire(self.on_lost, self, self.last_error)

    def _mark_lost(self, error: Optional[LicenseError]) -> None:
        """The server refused us (or time ran out): LOST now, on_lost once per episode."""
        fire = False
        with self._lock:
            if self._state == LeaseState.CLOSED:
                return
            self.last_error = error or self.last_error
            self._set_state(LeaseState.LOST)
            if not self._lost_reported:
                self._lost_reported = True
                fire = True
        if fire:
            self._fire(self.on_lost, self, self.last_error)

    # -- internals: the heartbeat thread -------------------------------------------------
    def _start_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive() and not self._stop.is_set():
            return
        self._thread = threading.Thread(target=self._run, name=f"coditect-license-{self._session_id}", daemon=True)
        self._thread.start()

    def _register(self) -> None:
        if not self._release_at_exit:
            return
        with _registry_lock:
            _open_leases.add(self)
        _install_exit_hooks(self._handle_signals)

    def _release_for_exit(self, reason: str) -> None:
        log.info("releasing %s at %s", self._session_id, reason)
        self.close()

    def _next_wakeup(self) -> float:
        with self._lock:
            now = time.monotonic()
            moments = [self._valid_until_mono, self._valid_until_mono - self._warning_window()]
            if self._state != LeaseState.BORROWED:
                moments += [self._next_beat, self._expires_mono]
            future = [m for m in moments if m > now]
            return (min(future) - now) if future else 1.0

    def _run(self) -> None:
        stop = self._stop
        while not stop.is_set():
            self._wake.wait(timeout=min(max(self._next_wakeup(), 0.05), 30.0))
            self._wake.clear()
            if stop.is_set():
                return
            try:
                self._update_by_time()
                with self._lock:
                    due = self._state in _RENEWING_STATES and time.monotonic() >= self._next_beat
                if due:
                    self._beat(stop)
                    self._update_by_time()
            except Exception:  # the thread must survive anything
                log.exception("unexpected error in the heartbeat thread")
                with self._lock:
                    self._next_beat = time.monotonic() + 5.0

    def _beat(self, stop: threading.Event) -> None:
        with self._lock:
            session_id = self._session_id
        try:
            if session_id is None:
                self._reacquire()
                return
            try:
                body = self._api.post("heartbeat", {"session_id": session_id}, retry=NO_RETRY, stop=stop)
            except (SessionExpired, SessionNotFound) as exc:
                if stop.is_set():
                    return  # released meanwhile by close(): nothing to re-acquire
                log.info("session %s is gone (%s); re-acquiring", session_id, exc.code)
                with self._lock:
                    self._session_id = None
                self._reacquire()
                return
            if stop.is_set():
                return
            self._accept(body, new_session=False)
            self.heartbeats += 1
        except (NoSeatAvailable,) as exc:
            self._after_failure(exc, refused=True)
        except (Forbidden, Gone, NotFound) as exc:
            # Suspended, expired, revoked, or not ours: the server will not renew.
            self._after_failure(exc, refused=True)
        except (LicenseError,) as exc:  # network, 5xx, 429, 401, auth, token trouble
            self._after_failure(exc, refused=False)

    def _reacquire(self) -> None:
        if self._stop.is_set():
            return
        body = self._api.post("acquire", self._acquire_body(), retry=NO_RETRY, stop=self._stop)
        if self._stop.is_set():
            self._release_quietly(body.get("session_id"))  # closed meanwhile: give it straight back
            return
        try:
            self._accept(body, new_session=True)
        except BaseException:
            self._release_quietly(body.get("session_id"))
            raise
        self.reacquisitions += 1

    def _release_quietly(self, session_id: Any) -> None:
        if not isinstance(session_id, str):
            return
        try:
            self._api.post("release", {"session_id": session_id}, retry=NO_RETRY, fresh_connection=True)
        except LicenseError as exc:
            log.warning("could not release %s (it frees itself at expiry): %s", session_id, exc)

    def _after_failure(self, error: LicenseError, *, refused: bool) -> None:
        with self._lock:
            if self._state == LeaseState.CLOSED:
                return
            self.last_error = error
            self._failures += 1
            cap = max(1.0, min(30.0, self._interval_s))
            if refused:
                delay = max(cap, error.retry_after or 0.0)
            else:
                delay = RetryPolicy(base_s=1.0, cap_s=cap).backoff(self._failures, error.retry_after)
            self._next_beat = time.monotonic() + delay
            log.info("lease renewal failed (%s); next try in %.1f s", error, delay)
        if refused:
            self._mark_lost(error)

