"""The states of a lease and the rules of time that move it between them.

    IDLE ──acquire()──> ACTIVE ──heartbeat fails──> RETRYING ──past exp──> OFFLINE_GRACE
                          ^  ^                         │                       │ past exp + grace
                          │  └──── heartbeat ok ───────┴───────────────────────┤
                          │                                                    v
                          └────────── regained (heartbeat or re-acquire) ──── LOST
    ACTIVE ──borrow()──> BORROWED (no heartbeats; valid offline until the borrow ends)
    any ──close()──> CLOSED (seat released, unless BORROWED: the borrow keeps it)

Pure: no threads, no network, no callbacks. Every instant is a reading of the monotonic
clock the caller injects (`time.monotonic` in the SDK, a fake one in tests). Deadlines
are counted from the moment each token arrived (its `exp - iat`), so a wrong or jumping
wall clock can neither stretch nor cut a lease.
"""

from __future__ import annotations

import enum
import random
import time
from dataclasses import dataclass
from typing import Callable

from coditect_license.transport import RetryPolicy


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


# The tool may run in these, while the signed validity lasts.
VALID_STATES = frozenset({LeaseState.ACTIVE, LeaseState.RETRYING, LeaseState.OFFLINE_GRACE, LeaseState.BORROWED})
# The heartbeat thread renews in these (LOST included: it keeps trying to take the seat back).
RENEWING_STATES = frozenset({LeaseState.ACTIVE, LeaseState.RETRYING, LeaseState.OFFLINE_GRACE, LeaseState.LOST})

# No renewal is planned further out than this, whatever the server's interval.
MAX_RETRY_DELAY_S = 30.0


def state_by_time(state: LeaseState, now: float, *, expires_at: float, valid_until: float,
                  failures: int) -> LeaseState:
    """The state the clock puts a lease in at `now` (all three instants on one monotonic clock).

    Only a valid lease moves here: past `valid_until` (exp + grace) it is LOST; a borrow
    needs no renewal, so only its end counts; otherwise, past `expires_at` (the signed
    exp) it lives on its offline grace, and while renewals fail it is RETRYING. Every
    other state is moved by events (acquire, renewal, refusal, borrow, close), not time.
    """
    if state not in VALID_STATES:
        return state
    if now >= valid_until:
        return LeaseState.LOST
    if state == LeaseState.BORROWED:
        return state
    if now >= expires_at:
        return LeaseState.OFFLINE_GRACE
    if failures:
        return LeaseState.RETRYING
    return state


def warning_window_s(lease_s: float, configured_s: float | None = None) -> float:
    """How long before a lease runs out `on_expiring` warns: as configured, else a third of the lease, 2-60 s."""
    if configured_s is not None:
        return configured_s
    return max(2.0, min(60.0, lease_s / 3))


@dataclass(frozen=True)
class TimeStep:
    """What the clock did to a lease: the state before and after, and which callbacks are now due."""

    previous: LeaseState
    state: LeaseState
    expiring_in: float | None = None  # seconds left, when on_expiring is due (once per episode)
    lost: bool = False                # on_lost is due (once per episode of LOST)
    borrow_ended: bool = False        # a borrow ran out: forget it; a re-acquire is due at once


class LeaseTimeline:
    """One lease's state, deadlines, renewal schedule, failure count and warnings.

    Not thread-safe: the lease's lock guards it. Every instant is a reading of `clock`
    (monotonic seconds); `jitter(low, high)` spreads heartbeats (random.uniform).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 jitter: Callable[[float, float], float] = random.uniform,
                 expiring_warning_s: float | None = None):
        self._clock = clock
        self._jitter = jitter
        self._expiring_warning_s = expiring_warning_s
        self.state = LeaseState.IDLE
        self.expires_at = 0.0     # the signed exp of the current token
        self.valid_until = 0.0    # ... plus its offline grace
        self.lease_s = 60.0       # exp - iat of the current token: what the warning window is a part of
        self.interval_s = 60.0    # the heartbeat interval the server asked for
        self.next_beat = 0.0
        self.failures = 0         # renewals failed in a row
        self._warned = False
        self._lost_reported = False

    # -- reading -------------------------------------------------------------------------
    def valid(self) -> bool:
        """True while the tool may run: a valid state whose signed validity has not run out."""
        return self.state in VALID_STATES and self._clock() < self.valid_until

    def seconds_left(self) -> float:
        """Seconds of validity left (exp + grace); 0 whenever the lease is not valid (LOST, CLOSED, ...)."""
        if self.state not in VALID_STATES:
            return 0.0
        return max(0.0, self.valid_until - self._clock())

    def warning_window(self) -> float:
        return warning_window_s(self.lease_s, self._expiring_warning_s)

    def renewal_due(self) -> bool:
        return self.state in RENEWING_STATES and self._clock() >= self.next_beat

    def seconds_to_next_moment(self) -> float:
        """Seconds until something is next due (a beat, exp, the warning, the end); 1.0 if nothing is ahead."""
        now = self._clock()
        moments = [self.valid_until, self.valid_until - self.warning_window()]
        if self.state != LeaseState.BORROWED:
            moments += [self.next_beat, self.expires_at]
        future = [moment for moment in moments if moment > now]
        return (min(future) - now) if future else 1.0

    # -- events ----------------------------------------------------------------------------
    def token_arrived(self, lease_s: float, grace_s: float) -> None:
        """A token valid for `lease_s` (its exp - iat), then `grace_s` offline, arrived now."""
        self.lease_s = lease_s
        self.expires_at = self._clock() + max(0.0, lease_s)
        self.valid_until = self.expires_at + grace_s

    def valid_for(self, remaining_s: float) -> None:
        """Offline, only this machine's wall clock can say how much is left: valid `remaining_s` from now."""
        self.expires_at = self.valid_until = self._clock() + max(0.0, remaining_s)

    def renewed(self, interval_s: float | None = None) -> bool:
        """The server renewed the lease (a heartbeat or an acquire answered; call token_arrived first).

        Resets failures and warnings and plans the next beat. Returns True when this
        ends a LOST episode that on_lost reported (on_regained is due)."""
        if interval_s is not None and interval_s > 0:
            self.interval_s = float(interval_s)
        self.failures = 0
        self._warned = False
        self.schedule_beat()
        regained = self.state == LeaseState.LOST and self._lost_reported
        self._lost_reported = False
        return regained

    def borrowed(self) -> None:
        """A borrow began (call token_arrived or valid_for first): a new episode for on_expiring."""
        self._warned = False

    def schedule_beat(self) -> None:
        """The next heartbeat: the server's interval, at most 80 % of the lease, minus up to 15 % jitter."""
        now = self._clock()
        lease_s = max(1.0, self.expires_at - now)
        interval = min(self.interval_s, lease_s * 0.8)
        self.next_beat = now + interval * self._jitter(0.85, 1.0)

    def failed(self, *, refused: bool, retry_after: float | None = None) -> float:
        """A renewal failed: count it and plan the next try; returns the delay (s).

        Refused (the server will not renew as things stand): the next try after the
        heartbeat interval (1-30 s), or Retry-After if later. Otherwise (no answer, 5xx,
        429, ID-token trouble): exponential backoff from 1 s, capped at that interval."""
        self.failures += 1
        cap = max(1.0, min(MAX_RETRY_DELAY_S, self.interval_s))
        if refused:
            delay = max(cap, retry_after or 0.0)
        else:
            delay = RetryPolicy(base_s=1.0, cap_s=cap).backoff(self.failures, retry_after)
        self.next_beat = self._clock() + delay
        return delay

    def retry_in(self, delay_s: float) -> None:
        self.next_beat = self._clock() + delay_s

    def beat_now(self) -> None:
        self.next_beat = 0.0

    def advance(self) -> TimeStep:
        """Let the clock act: move to the state it puts the lease in; say which callbacks are due.

        on_expiring is due once per episode, when a lease that cannot be renewed right
        now (renewals failing, or a borrow) enters its warning window; on_lost once per
        episode of LOST. The caller fires them, outside its lock."""
        now = self._clock()
        previous = self.state
        self.state = state_by_time(previous, now, expires_at=self.expires_at, valid_until=self.valid_until,
                                   failures=self.failures)
        borrow_ended = previous == LeaseState.BORROWED and self.state == LeaseState.LOST
        if borrow_ended:
            self.next_beat = now  # the borrow ended: take a seat again at once
        expiring_in = None
        if self.state in VALID_STATES and not self._warned and (self.failures or self.state == LeaseState.BORROWED):
            left = self.valid_until - now
            if left <= self.warning_window():
                self._warned = True
                expiring_in = left
        return TimeStep(previous, self.state, expiring_in, self.lost_due(), borrow_ended)

    def lost_due(self) -> bool:
        """True once per episode of LOST: on_lost is due now (the caller fires it)."""
        if self.state != LeaseState.LOST or self._lost_reported:
            return False
        self._lost_reported = True
        return True
