"""Webhook deliveries in Firestore: one document per notification and endpoint.

    deliveries/{event id}~{endpoint id}   tenant_id, endpoint_id, event_id, type, message (the
        body, as JSON text), state: due | delivered | refused | parked, attempts (the last
        ten: at, status, error, latency), attempt_count, first_at, next_at (when `due`),
        updated_at
`due` deliveries are attempted by the notify function's runs (shared/licensing/
webhook_dispatch.py), each at its next_at. The ids are deterministic, so a notification
handed over twice makes its deliveries once.
"""

from __future__ import annotations

from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud import firestore

from shared.domain.times import datetime_to_ms, ms_to_datetime
from shared.domain.webhook_endpoints import Delivery
from shared.store.bounded_calls import BoundedCalls

KEPT_ATTEMPTS = 10


def delivery_id(event_id: str, endpoint_id: str) -> str:
    return f"{event_id}~{endpoint_id}"


class FirestoreDeliveryStore(BoundedCalls):
    def create(self, *, tenant_id: str, endpoint_id: str, event_id: str, type_: str, message: str,
               now_ms: int) -> Delivery | None:
        """A new due delivery; None (nothing written) if this one exists already."""
        fields = {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "event_id": event_id, "type": type_,
                  "message": message, "state": "due", "attempts": [], "attempt_count": 0,
                  "first_at": ms_to_datetime(now_ms), "next_at": ms_to_datetime(now_ms),
                  "updated_at": ms_to_datetime(now_ms)}
        doc_id = delivery_id(event_id, endpoint_id)
        try:
            self._call(self._db.collection("deliveries").document(doc_id).create, fields, timeout=self._timeout_s)
        except google_exceptions.Conflict:
            return None
        return self._from(doc_id, fields)

    def due(self, *, now_ms: int, limit: int) -> list[Delivery]:
        """Deliveries to attempt now, the longest waiting first."""
        query = (self._db.collection("deliveries").where(filter=firestore.FieldFilter("state", "==", "due"))
                 .where(filter=firestore.FieldFilter("next_at", "<=", ms_to_datetime(now_ms)))
                 .order_by("next_at").limit(limit))
        return [self._from(doc_id, fields) for doc_id, fields in self._stream(query)]

    def record(self, delivery: Delivery, *, state: str, attempt: dict[str, Any] | None, next_ms: int | None,
               now_ms: int) -> None:
        """The delivery's new state, with `attempt` added to its last attempts."""
        attempts = [*delivery.attempts, *([attempt] if attempt else [])][-KEPT_ATTEMPTS:]
        self._call(self._db.collection("deliveries").document(delivery.id).update, {
            "state": state, "attempts": attempts, "attempt_count": delivery.attempt_count + (1 if attempt else 0),
            "next_at": ms_to_datetime(next_ms), "updated_at": ms_to_datetime(now_ms)}, timeout=self._timeout_s)

    def recent(self, endpoint_id: str, *, limit: int) -> list[Delivery]:
        """An endpoint's deliveries, the latest changed first (its delivery log)."""
        query = (self._db.collection("deliveries").where(filter=firestore.FieldFilter("endpoint_id", "==", endpoint_id))
                 .order_by("updated_at", direction=firestore.Query.DESCENDING).limit(limit))
        return [self._from(doc_id, fields) for doc_id, fields in self._stream(query)]

    @staticmethod
    def _from(doc_id: str, d: dict[str, Any]) -> Delivery:
        return Delivery(
            id=doc_id, tenant_id=d["tenant_id"], endpoint_id=d["endpoint_id"], event_id=d["event_id"], type=d["type"],
            message=d["message"], state=d["state"], attempts=tuple(d.get("attempts") or ()),
            attempt_count=int(d.get("attempt_count", 0)), first_ms=datetime_to_ms(d["first_at"]),
            next_ms=datetime_to_ms(d["next_at"]) if d.get("next_at") else None,
            updated_ms=datetime_to_ms(d["updated_at"]))
