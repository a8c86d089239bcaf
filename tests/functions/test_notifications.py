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


DAY_S = 86_400


def _scan(world) -> dict:
    token = world.stack.scheduler_token()
    response = world.clients["sweep"].post("/expiry", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_expiry_warnings_come_30_7_and_1_days_before_once_each_then_the_expiry(world, inbox):
    start = world.clock.now_ms()
    lic, _ = world.license(seats=1, expires_ms=start + 40 * DAY_S * 1000)
    soon, _ = world.license(seats=1, expires_ms=start + 5 * DAY_S * 1000)  # first seen within 7 days
    assert _scan(world) == {"scanned": 1, "expiring": 1, "expired": 0}  # soon: its 7-day warning, not 30
    world.clock.set_ms(soon.expires_ms + 3_600_000)
    assert _scan(world) == {"scanned": 1, "expiring": 0, "expired": 1}  # soon's end (lic is 35 days off)
    for days_left, expected in ((31, 0), (29, 1), (28, 0), (6.5, 1), (6, 0), (0.5, 1), (0.4, 0)):
        world.clock.set_ms(lic.expires_ms - int(days_left * DAY_S * 1000))
        assert _scan(world)["expiring"] == expected, days_left
    world.clock.set_ms(lic.expires_ms + 60_000)
    assert _scan(world)["expired"] == 1
    assert _scan(world)["expired"] == 0
    world.clock.set_ms(lic.expires_ms + 3 * DAY_S * 1000)
    assert _scan(world) == {"scanned": 0, "expiring": 0, "expired": 0}  # out of the window: not announced again
    assert world.sweep()[0] == 200
    got = inbox({lic.id, soon.id}, want=8)
    mine = sorted((m["data"]["days"] if m["type"] == "license.expiring" else 0, m["type"]) for m in got
                  if m["license"] == lic.id and m["type"] != "license.created")
    assert mine == [(0, "license.expired"), (1, "license.expiring"), (7, "license.expiring"),
                    (30, "license.expiring")]
    assert sorted(m["type"] for m in got if m["license"] == soon.id) == [
        "license.created", "license.expired", "license.expiring"]


def test_the_hours_first_refusal_and_long_queue_wait_are_made_known_once(world, inbox):
    from shared.domain.policies import QueuePolicy, SeatPolicy

    lic, key = world.license(seats=1, lease_ttl_s=3600, heartbeat_interval_s=600,
                             policy=SeatPolicy(queue=QueuePolicy(poll_interval_s=300, claim_window_s=300)))
    holder = world.acquire(key, uid="holder")
    for _ in range(3):
        assert world.call("acquire", {"license_key": key, "hardware_id": "hw"}, uid="late")[0] == 409
    assert world.sweep()[1]["published"] >= 2  # license.created, seats.exhausted
    assert world.call("acquire", {"license_key": key, "hardware_id": "hw"}, uid="late")[0] == 409
    world.sweep()  # a refusal more in the same hour: nothing new
    status, queued = world.call("acquire", {"license_key": key, "hardware_id": "hw", "wait": True}, uid="waiter")
    assert status == 202
    for _ in range(3):  # fifteen minutes in the queue, polling as told
        world.clock.advance(seconds=300)
        status, _ = world.call("acquire", {"license_key": key, "hardware_id": "hw", "ticket": queued["ticket"]},
                               uid="waiter")
        assert status == 202
    assert world.call("release", {"session_id": holder}, uid="holder")[0] == 200
    status, _ = world.call("acquire", {"license_key": key, "hardware_id": "hw", "ticket": queued["ticket"]},
                           uid="waiter")
    assert status == 201
    world.sweep()
    got = inbox({lic.id}, want=3)
    assert sorted(m["type"] for m in got) == ["license.created", "queue.long_wait", "seats.exhausted"]
    [exhausted] = [m for m in got if m["type"] == "seats.exhausted"]
    assert exhausted["data"]["refused"] >= 1 and exhausted["data"]["max_seats"] == 1
    [waited] = [m for m in got if m["type"] == "queue.long_wait"]
    assert waited["data"] == {"actor": "system", "hour": waited["data"]["hour"], "callers": 1, "waited_over_s": 600}


def test_a_refusal_in_an_hours_last_seconds_is_made_known_by_the_next_hours_first_sweep(world, inbox):
    hour_ms = 3_600_000
    world.clock.set_ms((world.clock.now_ms() // hour_ms + 1) * hour_ms - 5_000)  # hh:59:55
    lic, key = world.license(seats=1)
    world.acquire(key, uid="holder")
    assert world.call("acquire", {"license_key": key, "hardware_id": "hw"}, uid="late")[0] == 409
    world.clock.advance(seconds=15)  # the sweep's first run of the next hour takes the refusal
    assert world.sweep()[0] == 200
    [exhausted] = [m for m in inbox({lic.id}, want=2) if m["type"] == "seats.exhausted"]
    assert exhausted["data"]["refused"] == 1
