"""The heartbeat thread: keeps one lease alive in the background.

It sleeps until the lease's next due moment (a beat, exp, the expiry warning, the end),
lets the clock act on the lease (lease_state.py), and renews when a renewal is due: a
heartbeat, or, when the session is gone (410 / 404: the server lost or ended it), an
acquire at once with the same hardware id. A failure is one of two kinds:

- refused (no seat on re-acquire, suspended, expired, revoked, not ours): the server
  will not renew as things stand. The lease is LOST at once; tries go on at the
  heartbeat interval, and the seat is regained if it comes back.
- unanswered (network, timeout, 5xx, 429, 401, ID-token trouble): retried with
  backoff; the lease stays valid (RETRYING, then OFFLINE_GRACE) until exp + grace.

Each exchange is a single try (the thread's own schedule is the retry), and every
answer that arrives after `close()` is ignored or given back.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from coditect_license.errors import (
    Forbidden,
    Gone,
    LicenseError,
    NoSeatAvailable,
    NotFound,
    SessionExpired,
    SessionNotFound,
)
from coditect_license.transport import NO_RETRY, ApiClient

log = logging.getLogger("coditect_license")

# Bounds of one sleep: never spin, and look at the lease at least this often.
MIN_SLEEP_S = 0.05
MAX_SLEEP_S = 30.0
# After an unexpected error in the thread, the next try.
AFTER_CRASH_S = 5.0


class RenewableLease(Protocol):
    """What the heartbeat thread needs of the lease it keeps (lease.Lease is one)."""

    @property
    def session_id(self) -> str | None: ...

    @property
    def token(self) -> str | None: ...

    def _seconds_to_next_moment(self) -> float: ...

    def _let_time_act(self) -> None: ...

    def _renewal_due(self) -> bool: ...

    def _acquire_body(self) -> dict[str, Any]: ...

    def _accept(self, body: dict[str, Any], *, new_session: bool) -> None: ...

    def _forget_session(self) -> None: ...

    def _renewal_failed(self, error: LicenseError, *, refused: bool) -> None: ...

    def _retry_in(self, delay_s: float) -> None: ...


def release_quietly(api: ApiClient, session_id: Any) -> None:
    """Give back a session nobody will use (closed meanwhile, or its token did not verify); never raises."""
    if not isinstance(session_id, str):
        return
    try:
        api.post("release", {"session_id": session_id}, retry=NO_RETRY, fresh_connection=True)
    except LicenseError as exc:
        log.warning("could not release %s (it frees itself at expiry): %s", session_id, exc)


class Heartbeat:
    """The daemon thread of one lease; `beats` and `reacquisitions` count its successes."""

    def __init__(self, lease: RenewableLease, api: ApiClient):
        self._lease = lease
        self._api = api
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0
        self.reacquisitions = 0

    def start(self, name: str) -> None:
        """Start the thread unless it runs; after stop(), a new one with a stop of its own."""
        if self._thread is not None and self._thread.is_alive() and not self._stop.is_set():
            return
        if self._stop.is_set():
            # A thread stopped earlier may still finish a late exchange: it keeps its own
            # (set) stop event and gives back whatever it is granted.
            self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._stop,), name=name, daemon=True)
        self._thread.start()

    def stop(self, *, join_s: float = 0.0) -> None:
        """Stop the thread; wait up to `join_s` for it (never from the thread itself)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if join_s > 0 and thread is not None and thread is not threading.current_thread():
            # A beat still in flight is harmless once stop is set (a late answer is
            # ignored), so exits are not held up by a slow server.
            thread.join(timeout=join_s)

    def wake(self) -> None:
        """Look at the lease now (after beat_now, a borrow, ...), not at the planned moment."""
        self._wake.set()

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.wait(timeout=min(max(self._lease._seconds_to_next_moment(), MIN_SLEEP_S), MAX_SLEEP_S))
            self._wake.clear()
            if stop.is_set():
                return
            try:
                self._lease._let_time_act()
                if self._lease._renewal_due():
                    self._renew(stop)
                    self._lease._let_time_act()
            except Exception:  # the thread must survive anything
                log.exception("unexpected error in the heartbeat thread")
                self._lease._retry_in(AFTER_CRASH_S)

    def _renew(self, stop: threading.Event) -> None:
        session_id = self._lease.session_id
        try:
            if session_id is None:
                self._reacquire(stop)
                return
            try:
                body = self._api.post("heartbeat", _heartbeat_body(session_id, self._lease.token), retry=NO_RETRY,
                                      stop=stop)
            except (SessionExpired, SessionNotFound) as exc:
                if stop.is_set():
                    return  # released meanwhile by close(): nothing to re-acquire
                log.info("session %s is gone (%s); re-acquiring", session_id, exc.code)
                self._lease._forget_session()
                self._reacquire(stop)
                return
            if stop.is_set():
                return
            self._lease._accept(body, new_session=False)
            self.beats += 1
        except (NoSeatAvailable, Forbidden, Gone, NotFound) as exc:
            # No seat, suspended, expired, revoked, or not ours: the server will not renew.
            self._lease._renewal_failed(exc, refused=True)
        except LicenseError as exc:  # network, 5xx, 429, 401, auth, token trouble
            self._lease._renewal_failed(exc, refused=False)

    def _reacquire(self, stop: threading.Event) -> None:
        if stop.is_set():
            return
        body = self._api.post("acquire", self._lease._acquire_body(), retry=NO_RETRY, stop=stop)
        if stop.is_set():
            release_quietly(self._api, body.get("session_id"))  # closed meanwhile: give it straight back
            return
        try:
            self._lease._accept(body, new_session=True)
        except BaseException:
            release_quietly(self._api, body.get("session_id"))
            raise
        self.reacquisitions += 1


def _heartbeat_body(session_id: str, token: str | None) -> dict[str, str]:
    """The session, and its latest lease token: after the server lost its seat table, the
    token proves the lease was still valid, so it is kept rather than revived."""
    return {"session_id": session_id, **({"lease_token": token} if token else {})}
