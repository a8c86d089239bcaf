"""What the seat ledger answers: the outcomes of its operations, as the use cases read them.

The Redis adapter (shared/seats) produces these from its scripts' replies; the use cases
(shared/licensing) consume them through the ports, knowing nothing of Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shared.domain.sessions import EndReason, SessionEnd


@dataclass(frozen=True)
class AcquireOutcome:
    kind: Literal["GRANTED", "EXISTING", "FULL", "USER_LIMIT", "GROUP_LIMIT", "QUEUED", "TICKET_GONE", "STALE",
                  "REBUILD"]
    session_id: str = ""  # GRANTED, EXISTING
    expires_ms: int = 0  # GRANTED, EXISTING
    used: int = 0
    max_seats: int = 0
    acquired_ms: int = 0  # GRANTED, EXISTING
    earliest_expiry_ms: int = 0  # FULL
    overage: bool = False  # GRANTED, EXISTING: the seat is beyond max_seats (the overdraft)
    reserved_for: str = ""  # GRANTED, EXISTING: the group whose reserved seat it is
    reserved_idle: int = 0  # FULL: seats idle but reserved for groups the caller is not in
    overdraft: int = 0  # FULL: the overdraft seats (all in use)
    group: str = ""  # GROUP_LIMIT: the group at its maximum (used, max_seats: its holders, its maximum)
    waiting: int = 0  # FULL: tickets waiting in the queue, whom a newcomer does not overtake
    queue_full: bool = False  # FULL: the caller asked to wait, but the queue is at its bound
    ticket: str = ""  # QUEUED: the caller's ticket
    position: int = 0  # QUEUED: its place in line (1: next)
    queue_length: int = 0  # QUEUED
    waited_ms: int = 0  # GRANTED: how long the caller waited in the queue (0: not queued)
    ci: bool = False  # GRANTED, EXISTING: a seat of the CI pool (used, max_seats: the pool's);
    #                   FULL: the CI pool is full (used, max_seats: the pool's)


@dataclass(frozen=True)
class HeartbeatOutcome:
    kind: Literal["OK", "REVIVED", "UNKNOWN", "FORBIDDEN", "ENDED", "STALE", "REBUILD", "PROOF"]
    expires_ms: int = 0
    hardware_id: str = ""
    uid: str = ""
    acquired_ms: int = 0
    end_state: str | None = None  # ENDED: an EndReason value
    expired_ms: int = 0  # REVIVED: when the lease had run out (0: a restored lease nobody proved)
    overage: bool = False  # OK, REVIVED: the lease holds an overage seat (beyond max_seats)
    ci: bool = False  # OK, REVIVED: the lease holds a seat of the CI pool


@dataclass(frozen=True)
class ReleaseOutcome:
    kind: Literal["ENDED", "ALREADY", "UNKNOWN", "FORBIDDEN", "ROLLED_BACK", "REBUILD"]
    end: SessionEnd | None = None


@dataclass(frozen=True)
class SeatCount:
    kind: Literal["OK", "STALE", "REBUILD"]
    used: int = 0
    """Seats of max_seats counted now (every live lease but the CI pool's)."""
    earliest_expiry_ms: int | None = None
    ci_used: int = 0
    """Seats of the CI pool held now."""


@dataclass(frozen=True)
class QueueTicket:
    """A place in a license's wait queue, as administrators see it."""

    ticket: str
    position: int
    uid: str
    hardware_id: str
    groups: tuple[str, ...]
    queued_ms: int
    alive_until_ms: int
    held_until_ms: int | None  # a seat is held for it until then (None: still waiting)


@dataclass(frozen=True)
class LeaseRecord:
    """A session as the seat ledger holds it."""

    session_id: str
    uid: str
    hardware_id: str
    acquired_ms: int
    last_heartbeat_ms: int
    expires_ms: int
    state: str  # live, an EndReason value, or held (an ended borrow still counted until expires_ms)
    ended_ms: int | None
    borrowed_until_ms: int | None = None
    ci: bool = False  # a seat of the CI pool
    overage: bool = False  # a seat of the overdraft
    shown: dict[str, str] = field(default_factory=dict)
    """What administrators see of it besides user and hardware: `email`, `hostname`,
    `version` (its client's), as given at acquire; empty for a lease restored after a
    Redis loss."""

    def as_end(self) -> SessionEnd:
        return SessionEnd(self.session_id, EndReason(self.state), self.uid, self.hardware_id, self.acquired_ms,
                          self.last_heartbeat_ms, self.ended_ms if self.ended_ms is not None else self.expires_ms)


@dataclass(frozen=True)
class SweepBatch:
    """One license's share of a sweep: what expired, what to settle, what to verify."""

    expired: int
    live: int
    outbox_left: int
    ends: list[LeaseRecord]
    unverified: list[LeaseRecord]
    needs_rebuild: bool = False  # the table may lack what clients hold: nothing was done


@dataclass(frozen=True)
class RestoreEntry:
    """What the durable record says counts against a license's seats (for restore)."""

    session_id: str
    uid: str
    hardware_id: str
    acquired_ms: int
    until_ms: int | None = None  # a session: the end of its borrow; a hold: when it stops counting
    hold: bool = False  # an ended borrow whose seat still counts
    groups: tuple[str, ...] = ()  # a session's seat class as granted (SessionRecord)
    reserved_for: str | None = None
    overage: bool = False
    ci: bool = False


RESTORE_OUTCOMES = ("restored", "kept", "known", "held", "lapsed", "superseded")
"""What restoring one entry did (restore_seats.lua says what each means)."""


class SweepLockLost(Exception):
    """Another sweep holds the lock now: stop writing."""
