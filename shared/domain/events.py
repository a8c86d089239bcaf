"""The audit log's entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AuditEvent:
    """One line of the audit log. Deterministic ids make re-recording idempotent."""

    id: str
    tenant_id: str
    license_id: str | None
    type: str  # acquire | release | expire | force-release | license.create | ... (EndReason.audit_event)
    actor: str  # uid, or "system"
    at_ms: int
    session_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
