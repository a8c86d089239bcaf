"""How an ended session is told to the audit log (shared by release and the sweep)."""

from __future__ import annotations

from shared.seats import SessionEnd
from shared.store import AuditEvent, License

# Why a session ended -> the audit event type recorded for it.
END_EVENT = {
    "released": "release",
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
        actor=actor if end.state in ("released", "forced", "revoked") else "system",
        at_ms=end.ended_ms,
        details={"hardware_id": end.hardware_id, "uid": end.uid},
    )
