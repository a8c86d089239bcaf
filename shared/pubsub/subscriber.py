"""Pulling notifications from the delivery subscription (NOTIFY_SUBSCRIPTION).

The notify function pulls (a Cloud Scheduler job runs it every minute), hands each message
over to its deliveries (recorded in Firestore), then acknowledges it. A message it cannot
read is handed back at once (nack); one whose recording failed is redelivered after the
ack deadline. Either way, after the subscription's maximum delivery attempts Pub/Sub moves
it to the dead-letter topic (terraform/modules/functions; the local stack's the same).
"""

from __future__ import annotations

import json
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud.pubsub_v1 import SubscriberClient

from shared.errors import BackendUnavailable


class PubSubInbox:
    def __init__(self, subscription: str, *, pull_wait_s: float = 5.0, timeout_s: float = 10.0):
        self._subscription = subscription
        self._pull_wait_s = pull_wait_s  # a pull with nothing waiting ends at this deadline
        self._timeout_s = timeout_s
        self._client = SubscriberClient()

    def pull(self, *, max_messages: int) -> list[tuple[str, dict[str, Any] | None]]:
        """(ack id, the message's JSON body, or None if it is not one) of what is waiting."""
        try:
            answer = self._client.pull(subscription=self._subscription, max_messages=max_messages,
                                       timeout=self._pull_wait_s)
        except google_exceptions.DeadlineExceeded:
            return []  # nothing waiting
        except (google_exceptions.GoogleAPICallError, google_exceptions.RetryError) as exc:
            raise BackendUnavailable("pubsub") from exc
        out: list[tuple[str, dict[str, Any] | None]] = []
        for received in answer.received_messages:
            try:
                body = json.loads(received.message.data)
            except ValueError:
                body = None
            out.append((received.ack_id, body if isinstance(body, dict) else None))
        return out

    def ack(self, ack_ids: list[str]) -> None:
        if not ack_ids:
            return
        try:
            self._client.acknowledge(subscription=self._subscription, ack_ids=ack_ids, timeout=self._timeout_s)
        except (google_exceptions.GoogleAPICallError, google_exceptions.RetryError) as exc:
            raise BackendUnavailable("pubsub") from exc

    def nack(self, ack_ids: list[str]) -> None:
        """Hand the messages back for redelivery now (an ack deadline of 0): each time counts
        as one of the subscription's delivery attempts before it is dead-lettered."""
        if not ack_ids:
            return
        try:
            self._client.modify_ack_deadline(subscription=self._subscription, ack_ids=ack_ids,
                                             ack_deadline_seconds=0, timeout=self._timeout_s)
        except (google_exceptions.GoogleAPICallError, google_exceptions.RetryError) as exc:
            raise BackendUnavailable("pubsub") from exc
