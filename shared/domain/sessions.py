"""Sessions: their durable record, how one ends, and the one list of end reasons.

EndReason is the single vocabulary of session ends: the Redis scripts store its values
(shared/seats/lua), Firestore records them as `end_reason`, the audit log names each by
its `audit_event`, and a client whose session ended is told its `client_message`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class EndReason(StrEnum):
    RELEASED = "released"
    RETURNED = "returned"
    EXPIRED = "expired"
    FORCED = "forced"
    REVOKED = "revoked"
    UNRECORDED = "unrecorded"
    EVICTED_ON_RECOVERY = "evicted_on_recovery"
    NOT_HELD = "not_held"

    @property
    def audit_event(self) -> str:
        """The audit event type recorded for this end."""
        return _AUDIT_EVENT[self]

    @property
    def client_message(self) -> str:
        """What a client whose session ended this way is told (410 SESSION_EXPIRED)."""
        return _CLIENT_MESSAGE[self]

    @property
    def caused_by_caller(self) -> bool:
        """A person ended it (their uid is the event's actor); otherwise the system did."""
        return self in (EndReason.RELEASED, EndReason.RETURNED, EndReason.FORCED, EndReason.REVOKED)


_AUDIT_EVENT = {
    EndReason.RELEASED: "release",
    EndReason.RETURNED: "return",
    EndReason.EXPIRED: "expire",
    EndReason.FORCED: "force-release",
    EndReason.REVOKED: "revoke",
    EndReason.UNRECORDED: "expire-unrecorded",
    EndReason.EVICTED_ON_RECOVERY: "evict-on-recovery",
    EndReason.NOT_HELD: "close-not-held",
}
_CLIENT_MESSAGE = {
    EndReason.EXPIRED: "the lease ran out before this heartbeat; acquire a new seat",
    EndReason.RELEASED: "the session was released; acquire a new seat",
    EndReason.RETURNED: "the borrowed seat was returned; acquire a new seat",
    EndReason.FORCED: "an administrator ended this session; acquire a new seat",
    EndReason.REVOKED: "the license was revoked",
    EndReason.EVICTED_ON_RECOVERY: "the session could not be restored after a service recovery; acquire a new seat",
    EndReason.UNRECORDED: "the session was never recorded; acquire a new seat",
    EndReason.NOT_HELD: "the session never held a seat (its grant did not complete); acquire a new seat",
}


def end_message(state: str | None) -> str:
    """The client message for a stored end state (unknown or missing: a generic one)."""
    try:
        return EndReason(state or "").client_message
    except ValueError:
        return "the session has ended; acquire a new seat"


@dataclass(frozen=True)
class SessionEnd:
    """How a session ended, as the seat table knows it: what the durable record must be told."""

    session_id: str
    state: EndReason
    uid: str
    hardware_id: str
    acquired_ms: int
    last_heartbeat_ms: int
    ended_ms: int
    held_until_ms: int | None = None
    """A borrowed seat an admin ended keeps counting until its token lapses offline."""


@dataclass(frozen=True)
class SessionRecord:
    """A session as the durable record holds it."""

    id: str
    license_id: str
    tenant_id: str
    uid: str
    hardware_id: str
    acquired_ms: int
    lease_expires_ms: int | None
    client: dict[str, str] = field(default_factory=dict)
    status: str = "active"  # active | ended
    ended_ms: int | None = None
    end_reason: str | None = None  # an EndReason value
    last_heartbeat_ms: int | None = None
    borrowed_until_ms: int | None = None
    """Set by a borrow: the signed token of this session is valid offline until then."""
    seat_held_until_ms: int | None = None
    """An ended borrow whose seat stays counted until then (its token is still usable)."""
    groups: tuple[str, ...] = ()
    """The seat-policy groups its holder was in when the seat was granted."""
    reserved_for: str | None = None
    """The group whose reserved seat it holds (None: an unreserved or overage seat)."""
    overage: bool = False
    """Granted beyond max_seats, within the overdraft."""
    ci: bool = False
    """A seat of the license's CI pool, held by a machine key (License.ci_seats)."""
