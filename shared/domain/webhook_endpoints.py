"""A tenant's webhook endpoints: where its notifications are delivered, and with which secrets.

An endpoint belongs to one tenant (its admin or the owner makes it), names an https URL
(shared/domain/webhooks.py says which URLs and addresses are refused, and how a delivery is
signed), the notification types it wants (shared/domain/notifications.py; none listed:
all), and whether it is enabled. Its signing secret lives in Secret Manager, never in
Firestore: the endpoint records only the secret's versions, each with until when it signs.
The secret is in the answer that makes (or rotates) it, once. A rotation adds a version;
the one before keeps signing beside it for the overlap (a receiver verifies either), then
stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from shared.domain.times import rfc3339

MAX_ENDPOINTS_PER_TENANT = 20
DEFAULT_ROTATION_OVERLAP_S = 24 * 3600
MAX_ROTATION_OVERLAP_S = 7 * 24 * 3600
DESCRIPTION_MAX = 200


@dataclass(frozen=True)
class SecretVersion:
    """A version of the endpoint's secret (its Secret Manager name) and until when it signs
    (None: the current one, for as long as it is)."""

    name: str
    signs_until_ms: int | None = None


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    tenant_id: str
    url: str
    events: tuple[str, ...] = ()
    """Notification types delivered; () for all."""
    enabled: bool = True
    description: str = ""
    created_ms: int = 0
    created_by: str = ""
    secret_versions: tuple[SecretVersion, ...] = field(default_factory=tuple)
    """Newest first: the current version, then any still inside a rotation's overlap."""
    disabled_reason: str | None = None
    """Why the service disabled it (deliveries failing for 24 h); None if it did not."""
    failing_since_ms: int | None = None
    """Since when its deliveries have failed without a success (None: they succeed)."""

    def wants(self, notification_type: str) -> bool:
        return self.enabled and (not self.events or notification_type in self.events)

    def signing_versions(self, now_ms: int) -> tuple[SecretVersion, ...]:
        """The versions that sign a delivery now: the current one, and any whose overlap lasts."""
        return tuple(v for v in self.secret_versions if v.signs_until_ms is None or v.signs_until_ms > now_ms)

    def rotated(self, new_version: str, *, now_ms: int, overlap_s: int) -> WebhookEndpoint:
        """A new current version; the current one signs beside it for `overlap_s`, older ones stop."""
        current = [replace(v, signs_until_ms=now_ms + overlap_s * 1000) for v in self.secret_versions[:1]
                   if overlap_s > 0]
        return replace(self, secret_versions=(SecretVersion(new_version), *current))

    def admin_view(self, now_ms: int) -> dict[str, Any]:
        overlap = [v for v in self.signing_versions(now_ms) if v.signs_until_ms is not None]
        return {
            "id": self.id, "tenant": self.tenant_id, "url": self.url, "events": list(self.events),
            "enabled": self.enabled, "description": self.description, "created_at": rfc3339(self.created_ms),
            "created_by": self.created_by, "disabled_reason": self.disabled_reason,
            "previous_secret_signs_until": rfc3339(overlap[0].signs_until_ms) if overlap else None,
        }


@dataclass(frozen=True)
class Delivery:
    """One notification on its way to one endpoint (shared/store/delivery_store.py)."""

    id: str
    tenant_id: str
    endpoint_id: str
    event_id: str
    type: str
    message: str
    state: str
    attempts: tuple[dict[str, Any], ...]
    attempt_count: int
    first_ms: int
    next_ms: int | None
    updated_ms: int
