"""Waiting for a seat: `Lease.acquire(wait_s=..., on_queued=...)`.

    lease.acquire(wait_s=600, on_queued=lambda position, length: print(f"{ordinal(position)} of {length}"))

An acquire that may wait asks with `wait: true`. On a license with a wait queue, a
caller with no seat free gets a place in line (HTTP 202: a ticket, its position, the
queue's length and the server's `poll_interval_s`) instead of a refusal. The place is
kept alive by polling it (`acquire {ticket}`) every `poll_interval_s`, never faster (a
ticket not polled for three intervals lapses); each answer is a new position (202), the
seat (201: one was held for the ticket and is now a session; 200: this user's live
session on this machine, handed back), or TICKET_GONE (410: the place lapsed or was
cancelled; the caller queues again while time remains). `on_queued(position,
queue_length)` is called on the first place and whenever the position changes.

On a license without a queue (or whose queue is full, or a refusal the queue does not
cover) the server refuses as ever (409), and the wait is the older one: look again every
few seconds, at most every `_SEAT_POLL_S`, and join the queue if one opens meanwhile.

However the wait ends without a seat (its time ran out, an error, KeyboardInterrupt, the
process exiting through the SDK's exit hooks, `close()` from another thread), the place
in line is given up first (`release {ticket}`), so it never holds a seat for nobody;
then NoSeatAvailable says how long it waited and where it stood. Retries of unanswered
requests (429 and 503 with their Retry-After, network errors) are the transport's.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from coditect_license.errors import LicenseError, NoSeatAvailable, TicketGone
from coditect_license.transport import ApiClient, RetryPolicy

log = logging.getLogger("coditect_license")

OnQueued = Callable[[int, int], object]

# Without a queue, look again at least this often: Retry-After is when the earliest
# lease *expires*, and a holder may release sooner.
_SEAT_POLL_S = 5.0
# A poll interval the server states is used as is, but never below this.
_MIN_POLL_S = 1.0
# Giving up the place: a few quick tries on a connection of its own.
_LEAVE_RETRY = RetryPolicy(attempts=3, base_s=0.3, cap_s=2.0, deadline_s=6.0)


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, ..."""
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def seconds_text(seconds: float) -> str:
    """A wait as the SDK says it: `45 s`, `2.5 s`."""
    return f"{round(seconds, 1):g} s"


def gave_up_message(waited: str, *, position: int | None, queue_length: int | None, reason: str | None) -> str:
    """What a wait that ended without a seat says (the CLI words `waited` as the user typed it)."""
    if position is not None:
        where = f" (still {ordinal(position)} of {queue_length})" if queue_length else ""
        return f"waited {waited} in the queue and no seat came free{where}; try again later"
    if reason:
        return f"waited {waited} and no seat came free: {reason}"
    return f"waited {waited} and no seat came free; try again later"


@dataclass(frozen=True)
class QueuePlace:
    """A place in a license's wait queue, as the server last answered it (202)."""

    ticket: str
    position: int
    queue_length: int
    poll_interval_s: float
    claim_window_s: float | None

    @classmethod
    def from_answer(cls, body: dict[str, Any]) -> QueuePlace:
        ticket = body.get("ticket")
        if not isinstance(ticket, str) or not ticket:
            raise LicenseError("the server answered 202 without a queue ticket", code="ERROR")

        def number(name: str) -> float | None:
            value = body.get(name)
            return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

        return cls(ticket=ticket, position=int(number("position") or 0), queue_length=int(number("queue_length") or 0),
                   poll_interval_s=max(_MIN_POLL_S, number("poll_interval_s") or _SEAT_POLL_S),
                   claim_window_s=number("claim_window_s"))


class SeatWait:
    """One acquire that waits up to `wait_s` for a seat (see the module doc).

    `acquire_body()` is the plain acquire request; `run()` returns the answer that
    holds a seat (201 or 200) or raises. `cancel()` (any thread, a signal handler
    included) ends the wait and gives the place up at once.
    """

    def __init__(self, api: ApiClient, acquire_body: Callable[[], dict[str, Any]], *, wait_s: float,
                 on_queued: OnQueued | None = None):
        self._api = api
        self._acquire_body = acquire_body
        self.wait_s = max(0.0, float(wait_s))
        self._on_queued = on_queued
        self._cancelled = threading.Event()
        self._lock = threading.RLock()  # re-entered by a signal handler on the waiting thread
        self._ticket: str | None = None
        self.place: QueuePlace | None = None
        """The place in line the server last answered (None: never queued)."""

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """End the wait: the waiting thread stops at once, and the place in line is given up."""
        self._cancelled.set()
        self._leave_queue()

    # -- the wait ----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        deadline = started + self.wait_s
        try:
            while True:
                self._stop_if_cancelled(started)
                ticket = self._ticket
                try:
                    if ticket is None:
                        status, body = self._api.exchange("POST", "acquire", {**self._acquire_body(), "wait": True})
                    else:
                        status, body = self._api.exchange("POST", "acquire", {**self._acquire_body(), "ticket": ticket})
                except TicketGone:
                    # Lapsed (polled too late, e.g. the machine slept) or cancelled: queue again.
                    log.info("the place in the queue lapsed; queueing again")
                    self._forget_ticket()
                    if time.monotonic() >= deadline:
                        raise self._gave_up(started, None) from None
                    continue
                except NoSeatAvailable as refusal:
                    # No queue on this license (or it is full): the older wait.
                    self._forget_ticket()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise self._gave_up(started, refusal) from None
                    pause = min(left, max(1.0, min(refusal.retry_after or _SEAT_POLL_S, _SEAT_POLL_S)
                                          * random.uniform(0.8, 1.0)))
                    log.info("no seat free (%s); looking again in %.0f s", refusal.message, pause)
                    self._pause(pause, started)
                    continue
                if status != 202:
                    self._forget_ticket()  # converted to the session (or the caller's own handed back)
                    return body
                place = QueuePlace.from_answer(body)
                self._hold(place)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._gave_up(started, None)
                if place.poll_interval_s > left:
                    self._pause(left, started)  # the next poll would come too late: wait out the time
                    raise self._gave_up(started, None)
                self._pause(place.poll_interval_s, started)
        finally:
            self._leave_queue()

    def _hold(self, place: QueuePlace) -> None:
        """Keep the place the server answered; tell `on_queued` if it moved."""
        with self._lock:
            previous, self.place, self._ticket = self.place, place, place.ticket
        if self._cancelled.is_set():
            self._leave_queue()  # cancelled while this answer was on its way: give this place up too
            return
        if previous is None or previous.ticket != place.ticket or previous.position != place.position:
            log.info("waiting in the queue: %s of %d", ordinal(place.position), place.queue_length)
            if self._on_queued is not None:
                try:
                    self._on_queued(place.position, place.queue_length)
                except Exception:
                    log.exception("on_queued callback %r failed", self._on_queued)

    def _pause(self, seconds: float, started: float) -> None:
        if self._cancelled.wait(seconds):
            self._stop_if_cancelled(started)

    def _stop_if_cancelled(self, started: float) -> None:
        if self._cancelled.is_set():
            raise NoSeatAvailable(f"stopped waiting for a seat after {seconds_text(time.monotonic() - started)}: "
                                  "the lease was closed")

    def _gave_up(self, started: float, refusal: NoSeatAvailable | None) -> NoSeatAvailable:
        """The NoSeatAvailable of a wait whose time ran out (the place is given up in `run`).

        Queued at the end: where it stood. Refused at the end (no queue, or it was full):
        the server's refusal, its class and details kept, its message as `reason`."""
        place = self.place if self._ticket is not None else None
        details: dict[str, Any] = {"waited_s": round(time.monotonic() - started, 1)}
        if place is not None:
            details["queue"] = {"position": place.position, "length": place.queue_length}
            error = NoSeatAvailable(gave_up_message(seconds_text(self.wait_s), position=place.position,
                                                    queue_length=place.queue_length, reason=None), details=details)
            return error
        if refusal is None:  # the place lapsed just as the time ran out
            return NoSeatAvailable(gave_up_message(seconds_text(self.wait_s), position=None, queue_length=None,
                                                   reason=None), details=details)
        error = type(refusal)(gave_up_message(seconds_text(self.wait_s), position=None, queue_length=None,
                                              reason=refusal.message),
                              status=refusal.status, retry_after=refusal.retry_after,
                              details={**refusal.details, **details}, code=refusal.code)
        error.reason = refusal.message
        return error

    # -- the ticket ----------------------------------------------------------------------
    def _forget_ticket(self) -> None:
        with self._lock:
            self._ticket = None

    def _leave_queue(self) -> None:
        """Give the place in line up, if one is held (once, whichever thread gets here first). Never raises."""
        with self._lock:
            ticket, self._ticket = self._ticket, None
        if ticket is None:
            return
        try:
            answer = self._api.post("release", {"ticket": ticket}, retry=_LEAVE_RETRY, fresh_connection=True)
            log.info("left the queue (%s)", answer.get("status"))
        except LicenseError as exc:
            log.warning("could not leave the queue (the place lapses on its own within three poll intervals): %s",
                        exc.message)
