"""The notify function over HTTP, as Cloud Scheduler calls it every minute: only with a
scheduler token for its own URL; each run delivers what the sweep published; a message it
cannot read goes back to Pub/Sub and, after the subscription's delivery attempts, to the
dead-letter topic (Google's emulator forwards dead letters as Pub/Sub does)."""

from __future__ import annotations

import secrets
import time

import pytest
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from coditect_license import verify_webhook
from devstack.stack import NOTIFY_AUDIENCE
from tests.functions.test_webhook_delivery import Receiver


def _notify(world, token=None):
    token = token or world.stack.scheduler_token("notify")
    answer = world.clients["notify"].post("/", headers={"Authorization": f"Bearer {token}"})
    return answer.status_code, answer.get_json()


@pytest.fixture
def pubsub(world):
    """A subscription of this test's own on the stack's topic, read by notify; and names for
    more topics and subscriptions, deleted afterwards."""
    publisher, subscriber = PublisherClient(), SubscriberClient()
    project = world.rt.settings.notify_topic.split("/topics/")[0]
    made: dict[str, list[str]] = {"topics": [], "subscriptions": []}

    def name(kind: str) -> str:
        made[kind].append(f"{project}/{kind}/notify-{secrets.token_hex(4)}")
        return made[kind][-1]

    subscription = name("subscriptions")
    subscriber.create_subscription(name=subscription, topic=world.rt.settings.notify_topic)
    world.reconfigure(notify_subscription=subscription)
    yield publisher, subscriber, name
    for each in made["subscriptions"]:
        subscriber.delete_subscription(subscription=each)
    for each in made["topics"]:
        publisher.delete_topic(topic=each)
    publisher.transport.close()
    subscriber.close()


def test_only_a_scheduler_token_for_notify_runs_it(world, pubsub):
    oidc = world.stack.oidc
    refused = {
        "none": ("", 401),
        "the sweep's token (another function's audience)": (world.stack.scheduler_token("sweep"), 401),
        "another account": (oidc.scheduler_token(audience=NOTIFY_AUDIENCE, email="x@demo.iam.gserviceaccount.com"),
                            403),
        "a user's ID token": (world.token("user-1"), 401),
    }
    for case, (token, status) in refused.items():
        answer = world.clients["notify"].post("/", headers={"Authorization": f"Bearer {token}"} if token else {})
        assert answer.status_code == status, (case, answer.get_json())
    status, report = _notify(world)
    assert status == 200 and set(report) >= {"received", "delivered", "retrying", "parked", "unreadable"}


def test_a_run_delivers_what_the_sweep_published(world, pubsub):
    receiver = Receiver([200])
    try:
        made = world.admin("POST", "webhooks", tenant=world.tenant,
                           body={"url": receiver.url, "events": ["license.suspended"]})
        secret = made.get_json()["secret"]
        lic, _ = world.license(seats=1)
        assert world.admin("PATCH", f"licenses/{lic.id}", role="owner", uid="vendor",
                           body={"suspended": True}).status_code == 200
        assert world.sweep()[1]["published"] >= 1
        deadline = time.monotonic() + 20
        while not receiver.received and time.monotonic() < deadline:
            status, report = _notify(world)
            assert status == 200, report
        [(body, headers)] = receiver.received
        event = verify_webhook(body, headers, secret, now=world.clock.now_ms() / 1000)
        assert (event["type"], event["license"]) == ("license.suspended", lic.id)
        assert _notify(world)[1]["attempted"] == 0  # once
    finally:
        receiver.server.shutdown()


def test_a_message_notify_cannot_read_is_dead_lettered_after_five_attempts(world, pubsub):
    publisher, subscriber, name = pubsub
    topic, dead_topic = name("topics"), name("topics")
    publisher.create_topic(name=topic)
    publisher.create_topic(name=dead_topic)
    source, dead = name("subscriptions"), name("subscriptions")
    subscriber.create_subscription(request={"name": source, "topic": topic, "ack_deadline_seconds": 60,
                                            "dead_letter_policy": {"dead_letter_topic": dead_topic,
                                                                   "max_delivery_attempts": 5}})
    subscriber.create_subscription(name=dead, topic=dead_topic)
    world.reconfigure(notify_subscription=source)
    publisher.publish(topic, b'{"id": "not-a-notification"}').result(timeout=30)
    publisher.publish(topic, b"\xff not json").result(timeout=30)

    unreadable = 0
    for _ in range(5):  # each run takes both back (nack): one delivery attempt each
        status, report = _notify(world)
        assert status == 200 and report["queued"] == 0, report
        unreadable += report["unreadable"]
    assert unreadable == 10
    assert _notify(world)[1]["received"] == 0  # gone from the subscription
    answer = subscriber.pull(subscription=dead, max_messages=10, timeout=30)
    letters = sorted(m.message.data for m in answer.received_messages)
    assert letters == [b'{"id": "not-a-notification"}', b"\xff not json"]
    assert {m.message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] for m in answer.received_messages} \
        == {"5"}


def test_a_receiver_gets_every_event_type_once_each_signed(world, pubsub):
    """Each notification type happens once here; the receiver, subscribed to all, gets each
    event once (no event id twice) and every delivery verifies with the SDK."""
    from shared.domain.notifications import NOTIFICATION_TYPES
    from shared.domain.policies import QueuePolicy, SeatPolicy

    world.reconfigure(notify_subscription=world.rt.settings.notify_subscription, anomaly_check_interval_s=0)
    receiver = Receiver([200])
    owner = {"role": "owner", "uid": "vendor"}
    try:
        made = world.admin("POST", "webhooks", tenant=world.tenant, body={"url": receiver.url})
        secret = made.get_json()["secret"]
        start = world.clock.now_ms()
        # one seat, one in the overdraft, a queue: seats.overage, seats.exhausted, queue.long_wait
        busy, busy_key = world.license(seats=1, lease_ttl_s=3600, heartbeat_interval_s=600, policy=SeatPolicy(
            overdraft_seats=1, queue=QueuePolicy(poll_interval_s=300, claim_window_s=300)))
        first = world.acquire(busy_key, uid="first", hw="hw-first")
        world.acquire(busy_key, uid="second", hw="hw-second")  # in the overdraft
        status, queued = world.call("acquire", {"license_key": busy_key, "hardware_id": "hw", "wait": True},
                                    uid="waiter")
        assert status == 202, queued  # refused a seat: queued
        for _ in range(3):
            world.clock.advance(seconds=300)
            world.call("acquire", {"license_key": busy_key, "hardware_id": "hw", "ticket": queued["ticket"]},
                       uid="waiter")
        assert world.admin("DELETE", f"licenses/{busy.id}/sessions/{first}", tenant=world.tenant).status_code == 200
        assert world.call("acquire", {"license_key": busy_key, "hardware_id": "hw", "ticket": queued["ticket"]},
                          uid="waiter")[0] == 201
        # a shared key (anomaly.detected); changed, suspended, resumed, revoked
        lic, key = world.license(seats=10)
        for hw in ("a", "b", "c", "d"):
            world.acquire(key, uid="sharer", hw=hw)
        for change in ({"tier": "gold"}, {"suspended": True}, {"suspended": False}):
            assert world.admin("PATCH", f"licenses/{lic.id}", **owner, body=change).status_code == 200
        assert world.admin("DELETE", f"licenses/{lic.id}", **owner).status_code == 200
        # a machine key made and revoked
        made_key = world.admin("POST", "keys", tenant=world.tenant, body={"name": "ci", "licenses": [busy.id]})
        assert world.admin("DELETE", f"keys/{made_key.get_json()['key']['id']}", tenant=world.tenant).status_code == 200
        assert world.sweep()[0] == 200
        # expiring (7 days before: the nearest when first seen), then expired
        ending, _ = world.license(seats=1, expires_ms=start + 5 * 86_400_000)
        _scan = world.clients["sweep"].post
        token = {"Authorization": f"Bearer {world.stack.scheduler_token()}"}
        assert _scan("/expiry", headers=token).get_json()["expiring"] == 1
        world.clock.set_ms(ending.expires_ms + 60_000)
        assert _scan("/expiry", headers=token).get_json()["expired"] >= 1
        assert world.sweep()[0] == 200

        deadline = time.monotonic() + 30
        while {h["Coditect-Webhook-Type"] for _, h in receiver.received} < set(NOTIFICATION_TYPES) \
                and time.monotonic() < deadline:
            assert _notify(world)[0] == 200
        events = [verify_webhook(body, headers, secret, now=world.clock.now_ms() / 1000)
                  for body, headers in receiver.received]
        assert {e["type"] for e in events} == set(NOTIFICATION_TYPES)
        assert len({e["id"] for e in events}) == len(events)  # none twice
        once_each = [e["type"] for e in events if e["license"] == lic.id]
        assert sorted(once_each) == sorted(["license.created", "license.updated", "license.suspended",
                                            "license.resumed", "license.revoked", "anomaly.detected"])
    finally:
        receiver.server.shutdown()
