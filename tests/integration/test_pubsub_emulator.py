"""The Pub/Sub emulator of the local stack: Google's, with the notification topics, through the real client.

The stack (tests/conftest.py `stack`, which exported its env) starts Google's emulator
and creates NOTIFY_TOPIC and its dead-letter topic; these tests publish and pull with
google-cloud-pubsub exactly as the service and a subscriber of its notifications do.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from devstack import gcloud_emulator
from devstack.processes import free_port, session_members
from devstack.pubsub_emulator import GOOGLE_EMULATOR, EmulatorMissing, PubSubEmulator
from devstack.stack import NOTIFY_DEAD_LETTER_TOPIC

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def publisher(stack) -> Iterator[PublisherClient]:
    assert os.environ["PUBSUB_EMULATOR_HOST"] == stack.pubsub_host  # the clients find the emulator through it
    with PublisherClient() as client:
        yield client


@pytest.fixture
def subscriber(stack) -> Iterator[SubscriberClient]:
    with SubscriberClient() as client:
        yield client


def test_the_run_is_served_by_googles_emulator(stack):
    facts = stack.components()["pubsub"]
    assert facts["kind"] == GOOGLE_EMULATOR, f"this run's Pub/Sub emulator is {facts['describe']}"
    assert str(facts["describe"]).startswith("Google's Cloud Pub/Sub emulator ")
    if facts["started_by_stack"]:
        assert re.fullmatch(r"\d+\.\d+\.\d+", str(facts["version"]))
        assert re.fullmatch(r"\d+\.\d+\.\d+", str(facts["sdk_version"]))
    assert stack.env["PUBSUB_EMULATOR_HOST"] == stack.pubsub_host
    assert stack.env["NOTIFY_TOPIC"] == f"projects/{stack.project_id}/topics/license-events"
    # and the server the clients talk to answers as Google's does (plain HTTP/1.1 "Ok")
    assert httpx.get(f"http://{stack.pubsub_host}/", timeout=5).text.strip() == "Ok"


def test_the_notification_topics_exist(stack, publisher):
    topic = stack.env["NOTIFY_TOPIC"]
    assert publisher.get_topic(topic=topic, timeout=30).name == topic
    assert NOTIFY_DEAD_LETTER_TOPIC == f"projects/{stack.project_id}/topics/license-events-dead-letter"
    assert publisher.get_topic(topic=NOTIFY_DEAD_LETTER_TOPIC, timeout=30).name == NOTIFY_DEAD_LETTER_TOPIC


def test_a_message_published_to_the_topic_reaches_a_pull_subscription(stack, publisher, subscriber):
    # given a subscription of our own to the stack's topic (made before publishing: it gets what follows)
    topic = stack.env["NOTIFY_TOPIC"]
    subscription = f"projects/{stack.project_id}/subscriptions/test-{secrets.token_hex(4)}"
    subscriber.create_subscription(name=subscription, topic=topic, timeout=30)
    try:
        # when a message is published with the real client
        marker = secrets.token_hex(8).encode()
        message_id = publisher.publish(topic, b'{"type": "license.created"}', marker=marker.decode()).result(
            timeout=30)

        # then the pull subscription receives it, data and attributes intact
        received = []
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            pulled = subscriber.pull(subscription=subscription, max_messages=10, timeout=10)
            received = [m for m in pulled.received_messages if m.message.attributes.get("marker") == marker.decode()]
            if pulled.received_messages:
                subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in pulled.received_messages])
        assert [m.message.message_id for m in received] == [message_id]
        assert received[0].message.data == b'{"type": "license.created"}'
    finally:
        subscriber.delete_subscription(subscription=subscription, timeout=30)


def test_without_googles_emulator_the_stack_refuses_to_start(monkeypatch, tmp_path):
    # no gcloud at all
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EmulatorMissing, match="google-cloud-cli-pubsub-emulator"):
        PubSubEmulator().start()
    checked = subprocess.run([sys.executable, "-m", "devstack.pubsub_emulator"], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO / "scripts")}, timeout=60)
    assert checked.returncode == 1 and "There is no fallback emulator" in checked.stderr
    # a Cloud SDK without the component
    sdk = tmp_path / "google-cloud-sdk"
    (sdk / "platform").mkdir(parents=True)
    (sdk / "bin").mkdir()
    (sdk / "bin" / "gcloud").write_text("#!/bin/sh\nexit 1\n")
    (sdk / "bin" / "gcloud").chmod(0o755)
    monkeypatch.setenv("PATH", str(sdk / "bin"))
    with pytest.raises(EmulatorMissing, match=r"pubsub-emulator/lib/cloud-pubsub-emulator-\*-all\.jar is missing"):
        PubSubEmulator().start()


@pytest.mark.slow
def test_a_port_taken_before_the_bind_is_retried_and_the_failed_tree_stopped(monkeypatch):
    # given a port someone listens on, handed out as free first (the emulator would hang on it:
    # its bind error ends a thread, not java)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        monkeypatch.setattr(gcloud_emulator, "free_port", lambda: next(ports, None) or free_port())
        spawned: list[subprocess.Popen] = []
        real_spawn = gcloud_emulator.spawn

        def recording_spawn(*args, **kwargs) -> subprocess.Popen:
            spawned.append(real_spawn(*args, **kwargs))
            return spawned[-1]

        monkeypatch.setattr(gcloud_emulator, "spawn", recording_spawn)

        # when the emulator starts
        emulator = PubSubEmulator().start()
        try:
            # then on another port, long before the readiness timeout, and nothing of the first try is left
            assert emulator.port != taken.getsockname()[1] and len(spawned) == 2
            assert not session_members(spawned[0].pid)
            assert httpx.get(f"http://{emulator.host}/", timeout=5).text.strip() == "Ok"
        finally:
            emulator.stop()
        assert not session_members(spawned[1].pid)
