"""A floating seat held for the life of a tool: acquire, heartbeat, release, borrow.

    with Lease(key, server=URL, token_provider=provider, trusted_roots=ROOT_THUMBPRINTS) as lease:
        run_the_tool(features=lease.features)

`License` is the same class under its first name. This module is the public object;
the jobs around it live apart: lease_state.py (the states, and the rules of time that
move between them), heartbeat.py (the background thread and its renewals),
seat_queue.py (waiting for a seat, in the license's wait queue if it has one),
stored_borrow.py (borrows kept on this machine), exit_hooks.py (release at exit and on
signals), lease_options.py (the rarely needed settings).

Waiting: `acquire(wait_s=600, on_queued=show)` waits up to ten minutes for a seat. On a
license with a wait queue it takes a place in line (`on_queued(position, queue_length)`
on the first place and whenever it moves), polls it at the server's interval, and gets
the next seat it can take; without a queue it looks again every few seconds. A wait that
ends without a seat (its time, an error, Ctrl-C, exit) gives its place up before
NoSeatAvailable says how long it waited and where it stood (seat_queue.py).

Seat classes: `overage` is True while the seat is one beyond the license's max_seats,
within its overdraft (from the acquire answer, refreshed by every heartbeat; the signed
token says it too, `claims.overage`); `reserved_for` names the group whose reserved seat
this is (None: an ordinary seat).

The lease stays usable while its signed token is valid: `exp`, plus the license's
signed offline `grace` when the server cannot be reached. Past that, or when the server
refuses (suspended, revoked, no seat on re-acquire), the lease is LOST and `on_lost` is
called; the heartbeat thread keeps trying and calls `on_regained` if the seat comes
back. `on_expiring(lease, seconds_left)` warns once per episode when the lease is about
to run out without renewal. Callbacks run on the heartbeat thread (`on_state_change`
also on the thread whose call changed the state); their exceptions are logged, not raised.

Trust (`trusted_roots`): tokens are accepted only under root keys whose RFC 7638
thumbprints the tool pins. Why the pins are a parameter of the tool and nothing else:
the jwks cache file, the borrow file and every environment variable are the licensee's
to write, so only what the vendor compiles into the tool can be a trust anchor. Without
pins, tokens verify only with keys the server sent to this process, and a stored borrow
is used only after the server confirms it: never offline.

Several copies of a tool run by one user on one machine share one session (the server
answers an acquire by the same user and hardware id with the live session): closing one
copy releases the seat of all; the others notice at their next heartbeat and take a
seat again at once (README: "Several copies of a tool").
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable

from coditect_license import environment, exit_hooks, fingerprint
from coditect_license._version import __version__
from coditect_license.errors import LicenseError, NoLease, NoSeatAvailable, TokenInvalid
from coditect_license.heartbeat import Heartbeat, release_quietly
from coditect_license.identity import ProviderLike, as_provider
from coditect_license.jwks import JwksCache
from coditect_license.lease_options import LeaseOptions
from coditect_license.lease_state import RENEWING_STATES, VALID_STATES, LeaseState, LeaseTimeline
from coditect_license.seat_queue import OnQueued, SeatWait
from coditect_license.stored_borrow import StoredBorrow, parse_time, verify_offline
from coditect_license.tokens import LeaseClaims, split
from coditect_license.transport import ApiClient, RetryPolicy

if TYPE_CHECKING:
    OnLost = Callable[["Lease", "LicenseError | None"], object]
    OnRegained = Callable[["Lease"], object]
    OnExpiring = Callable[["Lease", float], object]
    OnStateChange = Callable[["Lease", LeaseState, LeaseState], object]

__all__ = ["ENV_SERVER", "Lease", "LeaseOptions", "LeaseState", "License"]

log = logging.getLogger("coditect_license")

ENV_SERVER = environment.SERVER  # kept importable from here (the CLI of 0.1 did)

# Retries of the calls a tool makes itself (the heartbeat thread makes single tries).
_RELEASE_RETRY = RetryPolicy(attempts=3, base_s=0.3, cap_s=2.0, deadline_s=6.0)
_BORROW_RETRY = RetryPolicy(attempts=3, deadline_s=20.0)
# close() waits this long for a heartbeat in flight before it releases.
_JOIN_S = 2.0

_unpinned_warning_lock = threading.Lock()
_unpinned_warning_given = False


def _warn_unpinned_once() -> None:
    """One warning per process: a lease without trusted_roots has no offline trust."""
    global _unpinned_warning_given
    with _unpinned_warning_lock:
        if _unpinned_warning_given:
            return
        _unpinned_warning_given = True
    log.warning("no trusted root keys are pinned (trusted_roots / --trusted-root): lease tokens are verified only "
                "with keys the server sends, and a borrowed seat is usable only while the server confirms it")


class Lease:
    """One seat of a license, kept alive in the background. See the module doc.

    Args:
        key: the license key.
        server: the server's base URL (or a `{name}` template); default
            `$CODITECT_LICENSE_SERVER`. Must be https:// (plain http:// only on
            loopback): ValueError otherwise.
        token_provider: the user's Firebase ID tokens: a `TokenProvider`, a callable
            returning one, or a token string; default `$CODITECT_ID_TOKEN` as a static
            token, else none (every server call then fails with AuthError).
        trusted_roots: the RFC 7638 thumbprints (base64url SHA-256) of every root key
            version the vendor accepts, i.e. the `kid`s of its deployment's `GET /jwks`;
            list a new version before the server rotates to it. Only tokens rooted in
            these keys are accepted; without it, see "Trust" in the module doc.
        hardware_id: this machine's id; default `fingerprint.hardware_id()`.
        on_lost, on_regained, on_expiring, on_state_change: callbacks (module doc).
        options: everything else (`LeaseOptions`, with its defaults).
    """

    def __init__(self, key: str, *, server: str | None = None, token_provider: ProviderLike | None = None,
                 trusted_roots: Iterable[str] | None = None, hardware_id: str | None = None,
                 on_lost: OnLost | None = None, on_regained: OnRegained | None = None,
                 on_expiring: OnExpiring | None = None, on_state_change: OnStateChange | None = None,
                 options: LeaseOptions | None = None):
        if not key or not key.strip():
            raise ValueError("a license key is required")
        self.key = key.strip()
        self.options = options = options or LeaseOptions()
        server = server or os.environ.get(environment.SERVER)
        if not server:
            raise ValueError(f"the license server URL is required (server=... or {environment.SERVER})")
        self.server = server.rstrip("/")
        if token_provider is None:
            # The CLI's rule too: a static token from the environment (CI) when the tool passes none.
            token_provider = (os.environ.get(environment.ID_TOKEN) or "").strip() or None
        provider = as_provider(token_provider) if token_provider is not None else None
        self._api = ApiClient(self.server, provider, timeout_s=options.timeout_s, retry=options.retry,
                              verify=options.verify, transport=options.transport)
        self._jwks = JwksCache(self.server, trusted_roots=trusted_roots, fetch=lambda: self._api.jwks(),
                               jwks=options.jwks)
        if not self._jwks.anchored:
            _warn_unpinned_once()
        self.hardware_id = hardware_id or fingerprint.hardware_id()
        hostname = options.hostname if options.hostname is not None else socket.gethostname()
        self._client_info = {"version": (options.client_version or f"coditect-license/{__version__}")[:64],
                             "hostname": hostname[:255]}
        self.on_lost, self.on_regained, self.on_expiring = on_lost, on_regained, on_expiring
        self.on_state_change = on_state_change

        self._lock = threading.RLock()  # guards everything below and the timeline
        self._timeline = LeaseTimeline(expiring_warning_s=options.expiring_warning_s)
        self._heartbeat = Heartbeat(self, self._api)
        self._borrow = StoredBorrow(self.key, self.server, self.hardware_id, self._jwks, options.issuer)
        self._session_id: str | None = None
        self._token: str | None = None
        self._claims: LeaseClaims | None = None
        self.seats: dict[str, int] | None = None
        self.license_info: dict[str, Any] = {}
        self.overage = False
        """True while this seat is beyond the license's max_seats, within its overdraft."""
        self.reserved_for: str | None = None
        """The group whose reserved seat this is (None: an ordinary seat)."""
        self._waiting: SeatWait | None = None  # while acquire() waits for a seat
        self.borrowed_until: float | None = None
        self.last_error: LicenseError | None = None

    # -- public view -------------------------------------------------------------------
    @property
    def state(self) -> LeaseState:
        return self._timeline.state

    @property
    def valid(self) -> bool:
        """True while the tool may run: a lease whose signed validity has not run out."""
        with self._lock:
            return self._timeline.valid()

    @property
    def session_id(self) -> str | None:
        return self._session_id

    @property
    def token(self) -> str | None:
        """The current signed lease token (a compact JWS; see tokens.py)."""
        return self._token

    @property
    def claims(self) -> LeaseClaims | None:
        return self._claims

    @property
    def features(self) -> list[str]:
        return list(self._claims.features) if self._claims else []

    @property
    def tier(self) -> str | None:
        return self._claims.tier if self._claims else None

    @property
    def license_id(self) -> str | None:
        return self._claims.license_id if self._claims else None

    @property
    def expires_at(self) -> int | None:
        """The signed expiry of the current token (Unix seconds, server clock)."""
        return self._claims.expires_at if self._claims else None

    @property
    def valid_until(self) -> int | None:
        """exp + the license's offline grace (Unix seconds, server clock)."""
        return self._claims.valid_until if self._claims else None

    @property
    def heartbeat_interval_s(self) -> float:
        return self._timeline.interval_s

    @property
    def heartbeats(self) -> int:
        """Heartbeats the server answered."""
        return self._heartbeat.beats

    @property
    def reacquisitions(self) -> int:
        """Seats taken again by the heartbeat thread after the session was gone (or a borrow ended)."""
        return self._heartbeat.reacquisitions

    def seconds_left(self) -> float:
        """Seconds until the lease's validity (exp + grace) runs out, by the monotonic clock; 0 unless `valid`."""
        with self._lock:
            return self._timeline.seconds_left()

    def has_feature(self, name: str) -> bool:
        return name in self.features

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.license_id or '?'} session={self._session_id} state={self.state.value}>"

    # -- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def acquire(self, *, wait_s: float | None = None, on_queued: OnQueued | None = None) -> Lease:
        """Take a seat (or resume a stored borrow) and start heartbeating.

        Without `wait_s` (None or 0) a license with no seat free raises NoSeatAvailable at
        once. With `wait_s` > 0 it waits up to that long for one: in the license's wait
        queue if it has one (`on_queued(position, queue_length)` is called on the first
        place and whenever the position changes; polls at the server's interval), else
        looking again every few seconds. When the time runs out (or the wait is
        interrupted: Ctrl-C, exit, `close()`), the place in line is given up first, then
        NoSeatAvailable is raised (`waited_s`, `queue_position`, `queue_length`). Whatever
        is raised is also kept in `last_error`; the lease is IDLE again and may retry
        (CLOSED if it was closed meanwhile).
        """
        with self._lock:
            if self.state in VALID_STATES or self.state == LeaseState.LOST:
                return self
            self._move_to(LeaseState.ACQUIRING)
        try:
            resumed = self._borrow.resume(self._api, self._verify_fresh) if self.options.use_borrow else None
            if resumed is not None:
                self._hold_borrow(resumed.token, resumed.claims, resumed.borrowed_until, offline_s=resumed.offline_s)
            else:
                self._take_seat(wait_s or 0.0, on_queued)
        except BaseException as exc:
            with self._lock:
                if isinstance(exc, LicenseError):
                    self.last_error = exc
                if self.state != LeaseState.CLOSED:
                    self._move_to(LeaseState.IDLE)
            raise
        if self.options.release_at_exit:
            exit_hooks.release_at_exit(self, handle_signals=self.options.handle_signals)
        self._heartbeat.start(name=f"coditect-license-{self._session_id}")
        return self

    def close(self) -> bool:
        """Stop heartbeating and release the seat. Never raises.

        Returns True when this lease holds no seat any more: the server confirmed the
        release (or had already ended the session), or nothing was held (never
        acquired, already closed, a borrow that had ended). False when a seat is still
        held: the server could not be told (`last_error` says why; the seat frees
        itself at its lease's expiry), or the lease was BORROWED (the borrow keeps the
        seat until it ends or `return_borrow()`; `borrowed_until` says when).
        """
        with self._lock:
            previous = self.state
            if previous == LeaseState.CLOSED:
                return True
            self._move_to(LeaseState.CLOSED)
            session_id = self._session_id
            waiting = self._waiting
        if waiting is not None:
            waiting.cancel()  # acquire() is waiting in line: stop it and give the place up
        self._heartbeat.stop(join_s=_JOIN_S)
        exit_hooks.forget(self)
        if previous == LeaseState.BORROWED:
            return False
        if session_id is None or previous == LeaseState.IDLE:
            return True
        try:
            self._api.post("release", {"session_id": session_id}, retry=_RELEASE_RETRY, fresh_connection=True)
            return True
        except LicenseError as exc:
            self.last_error = exc
            log.warning("release of %s failed (the lease frees itself at its expiry): %s", session_id, exc)
            return False

    release = close

    def detach(self) -> dict[str, Any]:
        """Stop heartbeating *without* releasing (the CLI's `acquire`): the seat is held
        until its lease expires or someone releases the returned session."""
        with self._lock:
            record = {"server": self.server, "session_id": self._session_id, "token": self._token,
                      "hardware_id": self.hardware_id}
            self._move_to(LeaseState.CLOSED)
        self._heartbeat.stop()
        exit_hooks.forget(self)
        return record

    def heartbeat_now(self) -> None:
        """Ask the heartbeat thread to beat at once (returns without waiting)."""
        with self._lock:
            self._timeline.beat_now()
        self._heartbeat.wake()

    # -- borrowing -------------------------------------------------------------------
    def borrow(self, duration_s: int) -> LeaseClaims:
        """Check the seat out for `duration_s`: no heartbeats, valid offline until then.

        The borrow token is stored in the user's cache dir; later runs of the tool (or
        `Lease.offline(key)`) use it (offline only with `trusted_roots`). BorrowNotAllowed
        (403) if the license allows no borrowing, InvalidRequest (400,
        `details["max_borrow_s"]`) if longer than it allows."""
        with self._lock:
            if self.state == LeaseState.BORROWED:
                raise LicenseError("the seat is already borrowed", code="ALREADY_BORROWED")
            if self._session_id is None or self.state not in RENEWING_STATES:
                raise NoLease("acquire a seat before borrowing it")
            session_id = self._session_id
        body = self._api.post("borrow", {"session_id": session_id, "duration_s": int(duration_s)},
                              retry=_BORROW_RETRY)
        claims = self._verify_fresh(body["token"])
        self._hold_borrow(body["token"], claims, parse_time(body.get("borrowed_until")))
        self._borrow.save(body["token"], claims, body.get("borrowed_until"))
        self._heartbeat.wake()  # the thread now only watches the borrow's end (on_expiring / on_lost)
        return claims

    def return_borrow(self) -> str:
        """Give a borrowed seat back early; the lease is CLOSED. Returns the server's status.

        The stored borrow token is deleted *before* the server is asked, so a crash in
        between can never leave a usable token for a seat the server freed. If the server
        cannot be told, the error is raised and the lease stays BORROWED in this process
        (call again); the server counts the seat until the borrow's end anyway."""
        with self._lock:
            if self.state != LeaseState.BORROWED or self._session_id is None:
                raise NoLease("no borrowed seat to return")
            session_id = self._session_id
        self._borrow.forget()
        body = self._api.post("borrow/return", {"session_id": session_id}, retry=_BORROW_RETRY)
        with self._lock:
            self._move_to(LeaseState.CLOSED)
        self._heartbeat.stop()
        exit_hooks.forget(self)
        return str(body.get("status", "returned"))

    @classmethod
    def offline(cls, key: str, *, server: str | None = None, hardware_id: str | None = None,
                trusted_roots: Iterable[str] | None = None, jwks: dict[str, Any] | None = None,
                now: float | None = None) -> LeaseClaims:
        """The stored borrow of `key`, verified with no network, under the pinned root keys.

        Raises TrustNotPinned (neither `trusted_roots` nor `jwks` given: nothing on this
        machine can be trusted), NoLease (nothing stored), TokenExpired (the borrow ended),
        TokenInvalid (forged, not under a pinned root, other machine, other server)."""
        return verify_offline(key, server=server, hardware_id=hardware_id or fingerprint.hardware_id(),
                              trusted_roots=trusted_roots, jwks=jwks, now=now)

    # -- internals: taking and holding a seat ----------------------------------------------
    def _take_seat(self, wait_s: float, on_queued: OnQueued | None) -> None:
        if wait_s <= 0:
            body = self._api.post("acquire", self._acquire_body())
        else:
            body = self._wait_for_seat(wait_s, on_queued)
        try:
            with self._lock:
                if self.state == LeaseState.CLOSED:
                    raise NoSeatAvailable("the lease was closed while it waited for a seat")
            self._accept(body, new_session=True)
        except BaseException:
            # granted, but unusable here (closed meanwhile, or its token did not verify): give it back
            release_quietly(self._api, body.get("session_id"))
            raise

    def _wait_for_seat(self, wait_s: float, on_queued: OnQueued | None) -> dict[str, Any]:
        """Wait up to `wait_s` for a seat (seat_queue.py). Meanwhile the exit hooks know
        the lease: exiting, or a signal, closes it, which gives the place in line up."""
        waiting = SeatWait(self._api, self._acquire_body, wait_s=wait_s, on_queued=on_queued)
        with self._lock:
            self._waiting = waiting
        if self.options.release_at_exit:
            exit_hooks.release_at_exit(self, handle_signals=self.options.handle_signals)
        try:
            return waiting.run()
        finally:
            with self._lock:
                self._waiting = None
            if self.options.release_at_exit:
                exit_hooks.forget(self)  # registered again once a seat is held (acquire)

    def _acquire_body(self) -> dict[str, Any]:
        return {"license_key": self.key, "hardware_id": self.hardware_id, "client": self._client_info}

    def _verify_fresh(self, token: str) -> LeaseClaims:
        """Verify a token the server just sent: chain and signatures; time checks are made
        at the token's own iat (this machine's clock plays no part, see lease_state.py)."""
        try:
            iat = float(split(token)[1].get("iat", 0))
        except TokenInvalid:
            iat = 0.0
        return self._jwks.verify(token, now=iat, leeway_s=0, issuer=self.options.issuer, hardware_id=self.hardware_id)

    def _install_token(self, token: str, claims: LeaseClaims) -> None:
        """Hold `token` from now on (under the lock): deadlines count from its arrival."""
        self._token, self._claims, self._session_id = token, claims, claims.session_id
        self._timeline.token_arrived(claims.expires_at - claims.issued_at, claims.grace_s)

    def _accept(self, body: dict[str, Any], *, new_session: bool) -> None:
        """A seat granted or renewed: verify and hold its token; ACTIVE (on_regained if it had been lost)."""
        claims = self._verify_fresh(body["token"])
        with self._lock:
            if self.state == LeaseState.CLOSED:
                return
            self._install_token(body["token"], claims)
            # Acquire and heartbeat answers say it; the signed claim when an answer does not.
            overage = body.get("overage")
            self.overage = overage if isinstance(overage, bool) else claims.overage
            if new_session:
                self.seats = body.get("seats") if isinstance(body.get("seats"), dict) else self.seats
                if isinstance(body.get("license"), dict):
                    self.license_info = body["license"]
                reserved_for = body.get("reserved_for")
                self.reserved_for = reserved_for if isinstance(reserved_for, str) and reserved_for else None
            self.last_error = None
            interval = body.get("heartbeat_interval_s")
            regained = self._timeline.renewed(float(interval) if isinstance(interval, (int, float)) else None)
            self._move_to(LeaseState.ACTIVE)
        if regained:
            self._fire(self.on_regained, self)

    def _hold_borrow(self, token: str, claims: LeaseClaims, borrowed_until: float | None, *,
                     offline_s: float | None = None) -> None:
        """Hold a borrow's token: BORROWED. `offline_s`: unconfirmed, valid that long by this machine's clock."""
        with self._lock:
            self._install_token(token, claims)
            self.overage = claims.overage
            if offline_s is not None:
                self._timeline.valid_for(offline_s)
            self.borrowed_until = borrowed_until or float(claims.expires_at)
            self._timeline.borrowed()
            self._move_to(LeaseState.BORROWED)

    # -- internals: state changes and callbacks ---------------------------------------------
    def _move_to(self, new: LeaseState) -> None:
        """Change the state (under the lock) and announce it."""
        old, self._timeline.state = self._timeline.state, new
        self._announce(old, new)

    def _announce(self, old: LeaseState, new: LeaseState) -> None:
        if old == new:
            return
        log.info("lease %s: %s -> %s", self._session_id, old.value, new.value)
        if self.on_state_change is not None:
            self._fire(self.on_state_change, self, old, new)

    def _fire(self, callback: Callable[..., object] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("lease callback %r failed", callback)

    # -- internals: what the heartbeat thread asks of the lease (heartbeat.RenewableLease) --
    def _seconds_to_next_moment(self) -> float:
        with self._lock:
            return self._timeline.seconds_to_next_moment()

    def _renewal_due(self) -> bool:
        with self._lock:
            return self._timeline.renewal_due()

    def _let_time_act(self) -> None:
        """Move between RETRYING / OFFLINE_GRACE / LOST as the clock runs; fire the callbacks due."""
        with self._lock:
            step = self._timeline.advance()
            self._announce(step.previous, step.state)
            if step.borrow_ended:
                self._session_id = None  # the next renewal re-acquires
                self._borrow.forget()
        if step.expiring_in is not None:
            self._fire(self.on_expiring, self, step.expiring_in)
        if step.lost:
            self._fire(self.on_lost, self, self.last_error)

    def _forget_session(self) -> None:
        with self._lock:
            self._session_id = None

    def _retry_in(self, delay_s: float) -> None:
        with self._lock:
            self._timeline.retry_in(delay_s)

    def _renewal_failed(self, error: LicenseError, *, refused: bool) -> None:
        """A renewal failed: retry later; refused means LOST now (on_lost once per episode)."""
        with self._lock:
            if self.state == LeaseState.CLOSED:
                return
            self.last_error = error
            delay = self._timeline.failed(refused=refused, retry_after=error.retry_after)
            log.info("lease renewal failed (%s); next try in %.1f s", error, delay)
            if not refused:
                return
            self._move_to(LeaseState.LOST)
            lost = self._timeline.lost_due()
        if lost:
            self._fire(self.on_lost, self, error)


License = Lease
