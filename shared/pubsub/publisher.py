"""Publishing notifications to the Pub/Sub topic (NOTIFY_TOPIC), with google-cloud-pubsub.

The client batches messages and retries transient errors itself; `publish` waits for every
message of a call to be acknowledged by Pub/Sub (or fails as a whole: the caller marks
nothing published and publishes them again, which is at-least-once). Locally the client
finds Google's Pub/Sub emulator through PUBSUB_EMULATOR_HOST.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent import futures
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud.pubsub_v1 import PublisherClient

from shared.domain.notifications import encoded
from shared.errors import BackendUnavailable


class PubSubPublisher:
    def __init__(self, topic: str, *, timeout_s: float = 30.0):
        self._topic = topic
        self._timeout_s = timeout_s
        self._client = PublisherClient()

    def publish(self, messages: Sequence[dict[str, Any]]) -> None:
        """Publish each message as JSON, with its id, type, tenant and license as attributes
        (a subscription can filter on them); returns once Pub/Sub has all of them."""
        pending = []
        for message in messages:
            attributes = {"event_id": str(message["id"]), "type": str(message["type"]),
                          "tenant": str(message["tenant"]), "license": str(message.get("license") or "")}
            data = encoded(message).encode()
            pending.append(self._client.publish(self._topic, data, **attributes))
        try:
            for future in pending:
                future.result(timeout=self._timeout_s)
        except (google_exceptions.GoogleAPICallError, google_exceptions.RetryError, futures.TimeoutError) as exc:
            raise BackendUnavailable("pubsub") from exc
