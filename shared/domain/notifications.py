"""Notifications: the events an administrator is told about, out of the audit log.

Each is an audit event first (recorded durably, with a deterministic id where it could be
recorded twice); the ones an administrator cares about are marked for publication when
recorded, and the sweep publishes them to Pub/Sub afterwards (shared/licensing/
notification_outbox.py): never an event for something that did not happen, never a
round trip added to acquire or heartbeat, at least once, with the event id to
de-duplicate on.

    type                     when                                     from the audit event
    license.created          the vendor made a license                license.create
    license.updated          a setting changed (not suspension)       license.update
    license.suspended        suspended (by the vendor or the admin)   license.update, suspended false -> true
    license.resumed          a suspension lifted                      license.update, suspended true -> false
    license.revoked          revoked for good                         license.revoke
    license.expiring         30, 7 and 1 days before its expiry       license.expiring (the daily scan)
    license.expired          its expiry passed                        license.expired (the daily scan)
    seats.exhausted          a refusal for want of a seat after an    seats.exhausted (the sweep, once an hour
                             hour without one                          at most per license)
    seats.overage            a seat granted in the overdraft          overage
    session.force_released   an administrator ended a session         force-release
    queue.long_wait          a caller waited in the queue > 10 min    queue.long_wait (the sweep)
    key.created, key.revoked a machine key made or revoked            key.create, key.revoke
    anomaly.detected         a conflict rule fired                    anomaly.detected
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.domain.events import AuditEvent
from shared.domain.times import DAY_MS, rfc3339

NOTIFICATION_TYPES = (
    "license.created", "license.updated", "license.suspended", "license.resumed", "license.revoked",
    "license.expiring", "license.expired", "seats.exhausted", "seats.overage", "session.force_released",
    "queue.long_wait", "key.created", "key.revoked", "anomaly.detected",
)
_BY_AUDIT_TYPE = {
    "license.create": "license.created",
    "license.revoke": "license.revoked",
    "license.expiring": "license.expiring",
    "license.expired": "license.expired",
    "seats.exhausted": "seats.exhausted",
    "overage": "seats.overage",
    "force-release": "session.force_released",
    "queue.long_wait": "queue.long_wait",
    "key.create": "key.created",
    "key.revoke": "key.revoked",
    "anomaly.detected": "anomaly.detected",
}
EXPIRY_WARNING_DAYS = (30, 7, 1)
"""Days before a license's expiry that its administrators are warned, once each."""
LONG_QUEUE_WAIT_S = 600
"""A wait in the queue this long or longer is reported (queue.long_wait)."""


def notification_type(event: AuditEvent) -> str | None:
    """The notification an audit event is published as, or None (not one an administrator
    is told about: seat traffic, reads)."""
    if event.type == "license.update":
        suspended = _change(event.details, "suspended")
        if suspended is not None and bool(suspended.get("after")) != bool(suspended.get("before")):
            return "license.suspended" if suspended.get("after") else "license.resumed"
        return "license.updated"
    return _BY_AUDIT_TYPE.get(event.type)


def _change(details: Mapping[str, Any], field: str) -> Mapping[str, Any] | None:
    changes = details.get("changes")
    if isinstance(changes, Mapping):
        change = changes.get(field)
        if isinstance(change, Mapping):
            return change
    return None


def message(event: AuditEvent, kind: str) -> dict[str, Any]:
    """The notification's body, as published and as a webhook receives it."""
    return {"id": event.id, "type": kind, "time": rfc3339(event.at_ms), "tenant": event.tenant_id,
            "license": event.license_id, "data": {"actor": event.actor, **({"session": event.session_id}
                                                                          if event.session_id else {}),
                                                  **event.details}}



def encoded(message: Mapping[str, Any]) -> str:
    """A notification as it travels (Pub/Sub data, a delivery's stored and posted body):
    compact JSON, keys sorted."""
    return json.dumps(message, separators=(",", ":"), sort_keys=True)


def expiry_notices(license_id: str, tenant_id: str, expires_ms: int | None, now_ms: int) -> list[AuditEvent]:
    """What the daily scan records for a license: `license.expired` once it has expired, else
    the warning of the nearest of EXPIRY_WARNING_DAYS it is within (a scan that first sees a
    license five days before its end warns of 7 days, not of 30 too). Ids are deterministic:
    each is recorded once (DurableRecord.record_notice)."""
    if expires_ms is None:
        return []
    expires_at = rfc3339(expires_ms)
    if now_ms >= expires_ms:
        return [AuditEvent(f"{license_id}:license.expired", tenant_id, license_id, "license.expired", "system",
                           now_ms, details={"expired_at": expires_at})]
    within = [days for days in EXPIRY_WARNING_DAYS if now_ms >= expires_ms - days * DAY_MS]
    if not within:
        return []
    days = min(within)
    return [AuditEvent(f"{license_id}:license.expiring:{days}d", tenant_id, license_id, "license.expiring", "system",
                       now_ms, details={"expires_at": expires_at, "days": days})]


def usage_notices(license_id: str, tenant_id: str, hour: str, counters: Mapping[str, int], *, max_seats: int,
                  now_ms: int) -> list[AuditEvent]:
    """What an hour's counters (shared/domain/usage.py) make known, once per hour each:
    `seats.exhausted` at its first refusal for want of a seat, `queue.long_wait` at its
    first caller served after waiting LONG_QUEUE_WAIT_S or more."""
    notices = []
    refused = int(counters.get("denials:no_seat", 0))
    if refused:
        notices.append(AuditEvent(f"{license_id}:seats.exhausted:{hour}", tenant_id, license_id, "seats.exhausted",
                                  "system", now_ms, details={"hour": hour, "refused": refused,
                                                             "max_seats": max_seats}))
    waited_long = sum(int(value) for name, value in counters.items()
                      if name.startswith("qwait_") and (name == "qwait_inf" or int(name[6:]) > LONG_QUEUE_WAIT_S))
    if waited_long:
        notices.append(AuditEvent(f"{license_id}:queue.long_wait:{hour}", tenant_id, license_id, "queue.long_wait",
                                  "system", now_ms, details={"hour": hour, "callers": waited_long,
                                                             "waited_over_s": LONG_QUEUE_WAIT_S}))
    return notices
