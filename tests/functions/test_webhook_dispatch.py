"""From a recorded event to a webhook receiver: the sweep publishes to Pub/Sub (Google's
emulator), the notify run pulls, queues a delivery per endpoint that wants the type,
delivers (real receivers on loopback), retries on the schedule, parks after 24 hours,
disables an endpoint failing that long, and refuses for good what a receiver refuses."""

from __future__ import annotations

import secrets
import time

import pytest
from google.cloud.pubsub_v1 import SubscriberClient

from coditect_license import verify_webhook
from tests.functions.test_webhook_delivery import Receiver


@pytest.fixture
def dispatch(world):
    """The notify function's dispatch, as the runtime wires it, over a subscription of this
    test's own on the stack's topic (other tests' messages stay on theirs). run(): one notify run."""
    subscriber = SubscriberClient()
    topic = world.rt.settings.notify_topic
    name = f"{topic.split('/topics/')[0]}/subscriptions/dispatch-{secrets.token_hex(4)}"
    subscriber.create_subscription(name=name, topic=topic)
    rt = world.reconfigure(notify_subscription=name)
    made = rt.webhook_dispatch
    made.deliveries = rt.deliveries
    yield made
    subscriber.delete_subscription(subscription=name)
    subscriber.close()


def _endpoint(world, url: str, events=()):
    answer = world.admin("POST", "webhooks", tenant=world.tenant, body={"url": url, "events": list(events)})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["webhook"]["id"], answer.get_json()["secret"]


def _suspend(world, lic) -> None:
    assert world.admin("PATCH", f"licenses/{lic.id}", role="owner", uid="vendor",
                       body={"suspended": True}).status_code == 200


def _run_until(dispatch, check, wait_s: float = 10):
    deadline = time.monotonic() + wait_s
    while True:
        report = dispatch.run(deadline=time.monotonic() + 30)
        if check(report) or time.monotonic() > deadline:
            return report


def test_a_live_event_reaches_each_endpoint_that_wants_it_signed(world, dispatch):
    wanting, other = Receiver([200]), Receiver([200])
    try:
        _, secret = _endpoint(world, wanting.url, events=["license.suspended"])
        _endpoint(world, other.url, events=["license.expiring"])
        lic, _ = world.license(seats=1)
        _suspend(world, lic)
        assert world.sweep()[1]["published"] >= 2
        report = _run_until(dispatch, lambda r: r.delivered >= 1)
        assert report.delivered == 1 and report.queued == 1, report
        [(body, headers)] = wanting.received
        event = verify_webhook(body, headers, secret, now=world.clock.now_ms() / 1000)
        assert (event["type"], event["license"], event["tenant"]) == ("license.suspended", lic.id, world.tenant)
        assert other.received == []
        assert dispatch.run(deadline=time.monotonic() + 30).attempted == 0  # delivered once
    finally:
        wanting.server.shutdown()
        other.server.shutdown()


def test_a_receiver_that_fails_three_times_gets_it_on_the_retries_and_a_410_is_not_retried(world, dispatch):
    flaky, gone = Receiver([500, 502, 503, 200]), Receiver([410])
    try:
        flaky_id, _ = _endpoint(world, flaky.url)
        gone_id, _ = _endpoint(world, gone.url)
        lic, _ = world.license(seats=1)
        world.sweep()
        report = _run_until(dispatch, lambda r: r.attempted >= 2)
        assert (report.retrying, report.refused) == (1, 1), report
        waits = []
        for _ in range(3):
            [due_at] = [d.next_ms for d in dispatch.deliveries.recent(flaky_id, limit=5)]
            waits.append(round((due_at - world.clock.now_ms()) / 1000))
            world.clock.set_ms(due_at)
            dispatch.run(deadline=time.monotonic() + 30)
        assert waits == [30, 60, 120]  # the schedule of shared/domain/webhooks.py
        [done] = dispatch.deliveries.recent(flaky_id, limit=5)
        assert done.state == "delivered" and [a["status"] for a in done.attempts] == [500, 502, 503, 200]
        [refused] = dispatch.deliveries.recent(gone_id, limit=5)
        assert refused.state == "refused" and len(gone.received) == 1
    finally:
        flaky.server.shutdown()
        gone.server.shutdown()


def test_a_delivery_failing_for_24_hours_is_parked_and_its_endpoint_disabled(world, dispatch):
    down = Receiver([503])
    try:
        endpoint_id, _ = _endpoint(world, down.url)
        world.license(seats=1)
        world.sweep()
        _run_until(dispatch, lambda r: r.attempted >= 1)
        dispatch = world.reconfigure(notify_subscription=None).webhook_dispatch  # nothing more to pull
        started = world.clock.now_ms()
        while True:
            [delivery] = world.rt.deliveries.recent(endpoint_id, limit=5)
            if delivery.state != "due":
                break
            world.clock.set_ms(delivery.next_ms)
            dispatch.run(deadline=time.monotonic() + 30)
        assert delivery.state == "parked" and delivery.attempt_count == 30
        assert world.clock.now_ms() - started <= 24 * 3600 * 1000
        endpoint = world.rt.store.get_webhook(endpoint_id)
        assert endpoint.enabled is False and "24 hours" in endpoint.disabled_reason
        events = [e.type for e in world.rt.store.list_events(tenant_id=world.tenant, license_id=None)]
        assert "webhook.disable" in events
        # an administrator enables it again: its failures start over
        again = world.admin("PATCH", f"webhooks/{endpoint_id}", tenant=world.tenant, body={"enabled": True})
        assert again.get_json()["webhook"]["disabled_reason"] is None
        assert world.rt.store.get_webhook(endpoint_id).failing_since_ms is None
    finally:
        down.server.shutdown()
