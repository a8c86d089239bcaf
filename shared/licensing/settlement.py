"""Making ends durable: the one way release, force-release, revoke and the sweep do it."""

from __future__ import annotations

from shared.clock import rfc3339
from shared.seats import SeatTable, SessionEnd
from shared.store import AuditEvent, FirestoreStore, License

# Why a session ended -> the audit event type recorded for it.
END_EVENT = {
    "released": "release",
    "returned": "return",
    "expired": "expire",
    "forced": "force-release",
    "revoked": "revoke",
    "unrecorded": "expire-unrecorded",
    "evicted_on_recovery": "evict-on-recovery",
}


def end_event(lic: License, end: SessionEnd, *, actor: str) -> AuditEvent:
    """The session's one end event; its id is deterministic, so recording it twice is harmless."""
    return AuditEvent(
        id=f"{end.session_id}:end",
        tenant_id=lic.tenant_id,
        license_id=lic.id,
        session_id=end.session_id,
        type=END_EVENT.get(end.state, end.state),
        actor=actor if end.state in ("released", "returned", "forced", "revoked") else "system",
        at_ms=end.ended_ms,
        details={"hardware_id": end.hardware_id, "uid": end.uid,
                 **({"seat_counted_until": rfc3339(end.held_until_ms)} if end.held_until_ms else {})},
    )


def record_closed(store: FirestoreStore, lic: License, ends: list[SessionEnd], *, actor: str) -> int:
    """Close the sessions in Firestore, each with its end event; returns the writes made."""
    if not ends:
        return 0
    return store.record_ends([(end, lic.id, lic.tenant_id, end_event(lic, end, actor=actor)) for end in ends])


def settle(store: FirestoreStore, seats: SeatTable, lic: License, ends: list[SessionEnd], *, actor: str) -> int:
    """Make Redis-side ends durable, then drop them from the outbox (never the other way
    round: if Firestore fails, the outbox keeps them for a retry or the sweep)."""
    writes = record_closed(store, lic, ends, actor=actor)
    if ends:
        seats.settled(lic.id, [end.session_id for end in ends])
    return writes
