"""Unit: the lease's rules of time (lease_state.py) on a fake monotonic clock. No server, no threads."""

from __future__ import annotations

import pytest

from coditect_license.lease_state import VALID_STATES, LeaseState, LeaseTimeline, state_by_time


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def no_jitter(low: float, high: float) -> float:
    return high


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def active(clock: FakeClock, *, lease_s: float = 30, grace_s: float = 0, interval_s: float = 10,
           expiring_warning_s: float | None = None) -> LeaseTimeline:
    """A timeline whose lease was just granted (ACTIVE)."""
    timeline = LeaseTimeline(clock=clock, jitter=no_jitter, expiring_warning_s=expiring_warning_s)
    timeline.token_arrived(lease_s, grace_s)
    timeline.renewed(interval_s)
    timeline.state = LeaseState.ACTIVE
    return timeline


@pytest.mark.parametrize(("state", "now", "failures", "expected"), [
    (LeaseState.ACTIVE, 50, 0, LeaseState.ACTIVE),
    (LeaseState.ACTIVE, 50, 1, LeaseState.RETRYING),
    (LeaseState.RETRYING, 100, 1, LeaseState.OFFLINE_GRACE),   # at exp: on the grace
    (LeaseState.ACTIVE, 100, 0, LeaseState.OFFLINE_GRACE),
    (LeaseState.OFFLINE_GRACE, 119.9, 3, LeaseState.OFFLINE_GRACE),
    (LeaseState.OFFLINE_GRACE, 120, 3, LeaseState.LOST),        # at exp + grace: lost
    (LeaseState.BORROWED, 110, 0, LeaseState.BORROWED),         # a borrow needs no renewal: only its end counts
    (LeaseState.BORROWED, 120, 0, LeaseState.LOST),
    (LeaseState.LOST, 50, 0, LeaseState.LOST),                  # events, not time, move the others
    (LeaseState.IDLE, 500, 0, LeaseState.IDLE),
    (LeaseState.ACQUIRING, 500, 0, LeaseState.ACQUIRING),
    (LeaseState.CLOSED, 500, 0, LeaseState.CLOSED),
])
def test_state_by_time(state, now, failures, expected):
    assert state_by_time(state, now, expires_at=100, valid_until=120, failures=failures) == expected


def test_deadlines_count_from_the_tokens_arrival_on_the_monotonic_clock(clock):
    timeline = active(clock, lease_s=30, grace_s=20)
    assert (timeline.expires_at, timeline.valid_until) == (1030, 1050)
    assert timeline.valid() and timeline.seconds_left() == 50

    clock.advance(49.5)
    assert timeline.valid() and timeline.seconds_left() == pytest.approx(0.5)
    clock.advance(0.5)
    assert not timeline.valid() and timeline.seconds_left() == 0


def test_an_unanswered_lease_retries_then_lives_on_its_grace_then_is_lost_once(clock):
    timeline = active(clock, lease_s=30, grace_s=20, interval_s=10)

    delay = timeline.failed(refused=False)
    assert 0.5 <= delay <= 1.0  # the first backoff: 1 s, jittered down to half
    step = timeline.advance()
    assert (step.previous, step.state, step.lost) == (LeaseState.ACTIVE, LeaseState.RETRYING, False)
    assert step.expiring_in is None  # 50 s left: far from the warning window

    clock.advance(30)
    step = timeline.advance()
    assert step.state == LeaseState.OFFLINE_GRACE and timeline.valid()
    # the default warning window is a third of the lease (10 s): not yet
    assert step.expiring_in is None
    clock.advance(10)
    assert timeline.advance().expiring_in == pytest.approx(10)
    assert timeline.advance().expiring_in is None  # once per episode

    clock.advance(10)
    step = timeline.advance()
    assert (step.previous, step.state, step.lost) == (LeaseState.OFFLINE_GRACE, LeaseState.LOST, True)
    assert not timeline.valid() and timeline.seconds_left() == 0
    assert timeline.advance().lost is False  # on_lost once per episode


def test_a_renewal_ends_the_episode_and_says_whether_the_seat_was_regained(clock):
    timeline = active(clock, lease_s=30, interval_s=10)
    timeline.failed(refused=False)
    assert timeline.renewed(10) is False  # never reported lost: nothing regained
    assert timeline.failures == 0

    clock.advance(31)
    assert timeline.advance().lost
    timeline.token_arrived(30, 0)
    assert timeline.renewed(10) is True  # on_regained is due
    timeline.state = LeaseState.ACTIVE
    assert timeline.valid() and timeline.seconds_left() == 30

    clock.advance(31)
    assert timeline.advance().lost  # a new episode is reported again


def test_a_refusal_makes_the_lease_not_valid_although_its_token_still_runs(clock):
    """LOST by the server's word (no seat, suspended): no time left, whatever the token says."""
    timeline = active(clock, lease_s=60)
    timeline.failed(refused=True)
    timeline.state = LeaseState.LOST
    assert timeline.lost_due() and not timeline.lost_due()

    assert not timeline.valid()
    assert timeline.seconds_left() == 0
    clock.advance(1)
    assert timeline.seconds_left() == 0


def test_a_healthy_lease_never_warns(clock):
    timeline = active(clock, lease_s=30, interval_s=10)
    clock.advance(25)  # inside the window, but renewals are not failing: the beat will renew it
    step = timeline.advance()
    assert step.state == LeaseState.ACTIVE and step.expiring_in is None


def test_a_borrow_warns_before_its_end_then_ends_and_asks_for_a_seat_at_once(clock):
    timeline = active(clock, lease_s=30, interval_s=10)
    timeline.token_arrived(3600, 0)
    timeline.borrowed()
    timeline.state = LeaseState.BORROWED

    clock.advance(3600 - 61)
    assert timeline.advance().expiring_in is None
    clock.advance(1)
    assert timeline.advance().expiring_in == pytest.approx(60)  # 2-60 s: capped at a minute

    clock.advance(60)
    step = timeline.advance()
    assert (step.state, step.lost, step.borrow_ended) == (LeaseState.LOST, True, True)
    assert timeline.renewal_due()  # re-acquire at once


def test_an_offline_borrow_is_valid_for_what_the_wall_clock_left(clock):
    timeline = LeaseTimeline(clock=clock, jitter=no_jitter)
    timeline.token_arrived(3600, 30)
    timeline.valid_for(100)
    timeline.state = LeaseState.BORROWED
    assert (timeline.expires_at, timeline.valid_until) == (1100, 1100)
    timeline.valid_for(-5)  # already past: nothing left
    assert not timeline.valid()


def test_the_expiring_warning_window_can_be_set(clock):
    timeline = active(clock, lease_s=30, expiring_warning_s=3)
    timeline.failed(refused=False)
    clock.advance(26)
    assert timeline.advance().expiring_in is None
    clock.advance(1.5)
    assert timeline.advance().expiring_in == pytest.approx(2.5)


@pytest.mark.parametrize(("lease_s", "window_s"), [(3, 2.0), (30, 10.0), (600, 60.0)])
def test_the_default_warning_window_is_a_third_of_the_lease_within_2_to_60_s(clock, lease_s, window_s):
    assert active(clock, lease_s=lease_s).warning_window() == window_s


def test_beats_follow_the_servers_interval_but_never_past_80_percent_of_the_lease(clock):
    assert active(clock, lease_s=30, interval_s=10).next_beat == 1010
    assert active(clock, lease_s=10, interval_s=60).next_beat == 1008
    jittered = LeaseTimeline(clock=clock, jitter=lambda low, high: low)
    jittered.token_arrived(100, 0)
    jittered.renewed(10)
    assert jittered.next_beat == pytest.approx(1008.5)  # up to 15 % earlier


def test_a_refused_renewal_tries_again_at_the_interval_or_retry_after(clock):
    timeline = active(clock, lease_s=120, interval_s=10)
    assert timeline.failed(refused=True) == 10
    assert timeline.failed(refused=True, retry_after=42) == 42
    assert active(clock, lease_s=600, interval_s=300).failed(refused=True) == 30  # at most 30 s apart
    assert timeline.failures == 2 and timeline.next_beat == 1042


def test_unanswered_renewals_back_off_up_to_the_interval(clock):
    timeline = active(clock, lease_s=120, interval_s=4)
    delays = [timeline.failed(refused=False) for _ in range(6)]
    assert all(0.5 * min(4, 2 ** n) <= delay <= min(4, 2 ** n) for n, delay in enumerate(delays))
    assert timeline.failed(refused=False, retry_after=3.5) >= 3.5


def test_renewals_are_due_in_the_renewing_states_only(clock):
    timeline = active(clock, lease_s=30, interval_s=10)
    assert not timeline.renewal_due()
    clock.advance(10)
    assert timeline.renewal_due()
    for state in (LeaseState.BORROWED, LeaseState.CLOSED, LeaseState.IDLE):
        timeline.state = state
        assert not timeline.renewal_due()
    timeline.state = LeaseState.LOST  # LOST keeps trying to take the seat back
    assert timeline.renewal_due()


def test_the_thread_sleeps_until_the_next_moment_anything_is_due(clock):
    timeline = active(clock, lease_s=30, grace_s=20, interval_s=10)
    assert timeline.seconds_to_next_moment() == 10  # the beat
    timeline.retry_in(50)
    assert timeline.seconds_to_next_moment() == 30  # exp, then the grace begins
    clock.advance(35)
    assert timeline.seconds_to_next_moment() == 5  # the warning window (10 s before the end)
    timeline.state = LeaseState.BORROWED  # no beats, no exp: only the warning and the end count
    clock.advance(6)
    assert timeline.seconds_to_next_moment() == 9
    clock.advance(100)
    assert timeline.seconds_to_next_moment() == 1.0  # nothing ahead: look again in a second


def test_valid_states():
    assert VALID_STATES == {LeaseState.ACTIVE, LeaseState.RETRYING, LeaseState.OFFLINE_GRACE, LeaseState.BORROWED}
