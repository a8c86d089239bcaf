"""Making ends durable: the one way release, force-release, revoke and the sweep do it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.domain import AuditEvent, License, SessionEnd
from shared.domain.times import rfc3339
from shared.licensing.ports import DurableRecord, SeatLedger


def end_event(lic: License, end: SessionEnd, *, actor: str, actor_details: Mapping[str, Any] | None = None
              ) -> AuditEvent:
    """The session's one end event; its id is deterministic, so recording it twice is harmless.
    `actor_details` (e.g. a machine key's name) join its details when the actor ended it."""
    return AuditEvent(
        id=f"{end.session_id}:end",
        tenant_id=lic.tenant_id,
        license_id=lic.id,
        session_id=end.session_id,
        type=end.state.audit_event,
        actor=actor if end.state.caused_by_caller else "system",
        at_ms=end.ended_ms,
        details={"hardware_id": end.hardware_id, "uid": end.uid,
                 **({"seat_counted_until": rfc3339(end.held_until_ms)} if end.held_until_ms else {}),
                 **((actor_details or {}) if end.state.caused_by_caller else {})},
    )


def record_closed(store: DurableRecord, lic: License, ends: list[SessionEnd], *, actor: str,
                  actor_details: Mapping[str, Any] | None = None) -> int:
    """Close the sessions in Firestore, each with its end event; returns the writes made."""
    if not ends:
        return 0
    return store.record_ends([(end, lic.id, lic.tenant_id, end_event(lic, end, actor=actor,
                                                                     actor_details=actor_details))
                              for end in ends])


def settle(store: DurableRecord, seats: SeatLedger, lic: License, ends: list[SessionEnd], *, actor: str,
           actor_details: Mapping[str, Any] | None = None) -> int:
    """Make Redis-side ends durable, then drop them from the outbox (never the other way
    round: if Firestore fails, the outbox keeps them for a retry or the sweep)."""
    writes = record_closed(store, lic, ends, actor=actor, actor_details=actor_details)
    if ends:
        seats.settled(lic.id, [end.session_id for end in ends])
    return writes
