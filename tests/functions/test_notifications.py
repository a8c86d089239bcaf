"""Notifications out of the audit log, published by the sweep to Pub/Sub (Google's emulator).

The world (tests/functions/conftest.py) has its own Firestore project and clock; the topic
is the stack's (NOTIFY_TOPIC), shared by every test, so each test reads the messages of
its own licenses from a subscription it makes.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest
from google.cloud.pubsub_v1 import SubscriberClient

from shared.pubsub.publisher import PubSubPublisher


@pytest.fixture
def inbox(world):
    """pull(license_ids) -> the messages published since the fixture began, of those licenses."""
    subscriber = SubscriberClient()
    topic = world.rt.settings.notify_topic
    assert topic, "the stack sets NOTIFY_TOPIC"
    name = f"{topic.split('/topics/')[0]}/subscriptions/test-{secrets.token_hex(4)}"
    subscriber.create_subscription(name=name, topic=topic)

    def pull(license_ids: set[str], *, want: int, wait_s: float = 10) -> list[dict]:
        got: list[dict] = []
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            answer = subscriber.pull(subscription=name, max_messages=100, timeout=5)
            if answer.received_messages:
                subscriber.acknowledge(subscription=name, ack_ids=[m.ack_id for m in answer.received_messages])
            for received in answer.received_messages:
                body = json.loads(received.message.data)
                assert dict(received.message.attributes) == {
                    "event_id": body["id"], "type": body["type"], "tenant": body["tenant"],
                    "license": body["license"] or ""}
                if body["license"] in license_ids:
                    got.append(body)
            if len(got) >= want:
                break
        return got

    yield pull
    subscriber.delete_subscription(subscription=name)
    subscriber.close()


def _suspend(world, lic, suspended: bool) -> None:
    answer = world.admin("PATCH", f"licenses/{lic.id}", role="owner", uid="vendor", body={"suspended": suspended})
    assert answer.status_code == 200, answer.get_json()


def test_what_an_administrator_cares_about_is_published_once_and_seat_traffic_is_not(world, inbox):
    lic, key = world.license(seats=1)
    sid = world.acquire(key, uid="ann")
    assert world.call("release", {"session_id": sid}, uid="ann")[0] == 200
    _suspend(world, lic, True)
    _suspend(world, lic, False)
    status, body = world.sweep()
    assert status == 200 and body["published"] >= 3, body
    got = inbox({lic.id}, want=3)
    # (Pub/Sub keeps no order without ordering keys: a receiver orders by `time`)
    assert sorted(m["type"] for m in got) == ["license.created", "license.resumed", "license.suspended"]
    [suspended] = [m for m in got if m["type"] == "license.suspended"]
    assert suspended["tenant"] == world.tenant and suspended["license"] == lic.id
    assert suspended["data"]["actor"] == "vendor"
    assert suspended["data"]["changes"]["suspended"] == {"before": False, "after": True}
    assert suspended["time"].endswith("Z") and len({m["id"] for m in got}) == 3
    # published once: the next sweep has nothing of these to publish
    assert world.sweep()[1]["published"] == 0
    assert inbox({lic.id}, want=1, wait_s=2) == []


def test_a_failed_publish_marks_nothing_and_the_next_sweep_publishes_it(world, inbox):
    lic, _ = world.license(seats=1)
    outbox = world.rt.notification_outbox
    publisher = outbox._publisher
    assert publisher is not None

    # a topic that is not there: Pub/Sub refuses the publish (a real refusal, of the emulator)
    outbox._publisher = PubSubPublisher(f"{world.rt.settings.notify_topic}-gone-{secrets.token_hex(3)}", timeout_s=5)
    status, body = world.sweep()
    assert status == 503 and body["error"]["backend"] == "pubsub"  # nothing published, nothing marked
    assert [e.id for e, _ in world.rt.store.pending_notifications(limit=10)]
    outbox._publisher = publisher
    assert world.sweep()[1]["published"] >= 1
    assert [m["type"] for m in inbox({lic.id}, want=1)] == ["license.created"]
    assert world.rt.store.pending_notifications(limit=10) == []
