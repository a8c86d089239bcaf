"""Pulling notifications from the delivery subscription (NOTIFY_SUBSCRIPTION).

The notify function pulls (a Cloud Scheduler job runs it every minute), hands each message
over to its deliveries (recorded in Firestore), then acknowledges it. A message that is
never acknowledged (it cannot be read, or recording fails every time) is redelivered, and
after the subscription's maximum attempts goes to the dead-letter topic (Terraform).
"""

from __future__ import annotations

import json
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud.pubsub_v1 import SubscriberClient

from shared.errors import BackendUnavailable


class PubSubInbox:
    def __init__(self, subscription: str, *, timeout_s: float = 10.0):
        self._subscription = subscription
        self._timeout_s = timeout_s
        self._client = SubscriberClient()

    def pull(self, *, max_messages: int) -> list[tuple[str, dict[str, Any] | None]]:
        """(ack id, the message's JSON body, or None if it is not one) of what is waiting."""
        try:
            answer = self._client.pull(subscription=self._subscription, max_messages=max_messages,
                                       timeout=self._timeout_s)
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
