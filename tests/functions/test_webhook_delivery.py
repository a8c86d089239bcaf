"""Delivering a notification to a webhook endpoint: real receivers on loopback (the local
stack allows them), secrets read back from the Secret Manager stand-in with the real client,
every delivery verified with the SDK's verify_webhook."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from coditect_license import WebhookInvalid, verify_webhook
from shared.google_secrets import SecretReader, secret_manager_client
from shared.licensing.webhook_delivery import WebhookDelivery
from shared.webhook_http import WebhookSender


class Receiver:
    """An HTTP server on 127.0.0.1 answering each POST with the next of `answers` (the last
    repeats), keeping what it received."""

    def __init__(self, answers: list[int]):
        self.answers, self.received = list(answers), []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((body, dict(self.headers)))
                status = receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receivers() -> Iterator:
    made: list[Receiver] = []

    def make(*answers: int) -> Receiver:
        made.append(Receiver(list(answers)))
        return made[-1]

    yield make
    for receiver in made:
        receiver.server.shutdown()


def _endpoint(world, url: str):
    answer = world.admin("POST", "webhooks", tenant=world.tenant, body={"url": url})
    assert answer.status_code == 201, answer.get_json()
    made = answer.get_json()
    return world.rt.store.get_webhook(made["webhook"]["id"]), made["secret"]


def _delivery(world, *, allow_private: bool = True) -> WebhookDelivery:
    reader = SecretReader(secret_manager_client(world.rt.settings.secret_manager_endpoint))
    return WebhookDelivery(secrets=reader, sender=WebhookSender(timeout_s=5), clock=world.clock,
                           allow_private=allow_private)


MESSAGE = {"id": "ev-1", "type": "license.suspended", "time": "2027-03-14T05:00:00.000Z", "tenant": "sweepers",
           "license": "lic_00000000000000000000", "data": {"actor": "vendor"}}


def test_a_delivery_is_signed_so_the_receiver_verifies_it_with_the_sdk(world, receivers):
    receiver = receivers(204)
    endpoint, secret = _endpoint(world, receiver.url)
    attempt = _delivery(world).attempt(MESSAGE, endpoint)
    assert (attempt.delivered, attempt.status, attempt.retry) == (True, 204, False)
    [(body, headers)] = receiver.received
    now = world.clock.now_ms() / 1000
    assert verify_webhook(body, headers, secret, now=now) == MESSAGE
    assert headers["Coditect-Webhook-Id"] == "ev-1" and headers["Content-Type"] == "application/json"
    with pytest.raises(WebhookInvalid):
        verify_webhook(body.replace(b"vendor", b"intruder"), headers, secret, now=now)


def test_during_a_rotation_both_secrets_verify_and_after_it_only_the_new(world, receivers):
    receiver = receivers(200)
    endpoint, old = _endpoint(world, receiver.url)
    rotated = world.admin("POST", f"webhooks/{endpoint.id}/rotate", tenant=world.tenant, body={"overlap_s": 600})
    new = rotated.get_json()["secret"]
    delivery = _delivery(world)
    delivery.attempt(MESSAGE, world.rt.store.get_webhook(endpoint.id))
    body, headers = receiver.received[-1]
    now = world.clock.now_ms() / 1000
    assert verify_webhook(body, headers, old, now=now) == verify_webhook(body, headers, new, now=now) == MESSAGE
    world.clock.advance(seconds=601)
    delivery.attempt(MESSAGE, world.rt.store.get_webhook(endpoint.id))
    body, headers = receiver.received[-1]
    now = world.clock.now_ms() / 1000
    assert verify_webhook(body, headers, new, now=now) == MESSAGE
    with pytest.raises(WebhookInvalid, match="no_matching_signature|signature"):
        verify_webhook(body, headers, old, now=now)


@pytest.mark.parametrize("answers, retry", [((500,), True), ((503,), True), ((429,), True), ((408,), True),
                                            ((410,), False), ((400,), False), ((404,), False)])
def test_failures_are_judged_worth_a_retry_or_not(world, receivers, answers, retry):
    receiver = receivers(*answers)
    endpoint, _ = _endpoint(world, receiver.url)
    attempt = _delivery(world).attempt(MESSAGE, endpoint)
    assert (attempt.delivered, attempt.status, attempt.retry) == (False, answers[0], retry)


def test_a_receiver_that_fails_three_times_then_succeeds_gets_it_on_the_fourth(world, receivers):
    receiver = receivers(500, 502, 503, 200)
    endpoint, secret = _endpoint(world, receiver.url)
    delivery = _delivery(world)
    attempts = [delivery.attempt(MESSAGE, endpoint) for _ in range(4)]
    assert [(a.status, a.retry, a.delivered) for a in attempts] == [
        (500, True, False), (502, True, False), (503, True, False), (200, False, True)]
    assert len({body for body, _ in receiver.received}) == 1  # the same event each time
    assert verify_webhook(receiver.received[-1][0], receiver.received[-1][1], secret,
                          now=world.clock.now_ms() / 1000) == MESSAGE


def test_no_answer_is_worth_a_retry_and_a_private_address_is_refused_as_deployed(world, receivers):
    receiver = receivers(200)
    endpoint, _ = _endpoint(world, receiver.url)
    receiver.server.shutdown()
    receiver.server.server_close()
    silent = _delivery(world).attempt(MESSAGE, endpoint)
    assert (silent.status, silent.retry, silent.delivered) == (None, True, False) and silent.error
    refused = _delivery(world, allow_private=False).attempt(MESSAGE, endpoint)
    assert (refused.status, refused.retry) == (None, False) and "127.0.0.1" in refused.error


def test_a_host_that_resolves_to_a_private_address_is_refused_at_delivery_time(world, receivers):
    receiver = receivers(200)
    endpoint, _ = _endpoint(world, receiver.url.replace("127.0.0.1", "hooks.example.com"))

    def rebinding(host, port):  # the name now answers with the metadata address
        return [(2, 1, 6, "", ("169.254.169.254", port))]

    delivery = WebhookDelivery(secrets=SecretReader(secret_manager_client(world.rt.settings.secret_manager_endpoint)),
                               sender=WebhookSender(timeout_s=5), clock=world.clock, allow_private=False,
                               resolver=rebinding)
    attempt = delivery.attempt(MESSAGE, endpoint)
    assert (attempt.status, attempt.retry) == (None, False) and "169.254.169.254" in attempt.error
    assert receiver.received == []


def test_an_administrator_sends_a_test_event_and_reads_the_delivery_log(world, receivers):
    good, bad = receivers(200), receivers(503)
    good_id = world.admin("POST", "webhooks", tenant=world.tenant, body={"url": good.url}).get_json()
    bad_id = world.admin("POST", "webhooks", tenant=world.tenant, body={"url": bad.url}).get_json()["webhook"]["id"]
    sent = world.admin("POST", f"webhooks/{good_id['webhook']['id']}/test", tenant=world.tenant, body={})
    assert sent.status_code == 200 and sent.get_json()["delivered"] is True and sent.get_json()["status"] == 200
    [(body, headers)] = good.received
    event = verify_webhook(body, headers, good_id["secret"], now=world.clock.now_ms() / 1000)
    assert event["type"] == "webhook.test" and event["data"]["webhook"] == good_id["webhook"]["id"]
    failed = world.admin("POST", f"webhooks/{bad_id}/test", tenant=world.tenant, body={}).get_json()
    assert (failed["delivered"], failed["status"], failed["state"]) == (False, 503, "due")
    log = world.admin("GET", f"webhooks/{bad_id}/deliveries", tenant=world.tenant).get_json()
    [entry] = log["deliveries"]
    assert entry["type"] == "webhook.test" and entry["state"] == "due" and entry["next_attempt_at"]
    assert [a["status"] for a in entry["attempts"]] == [503] and entry["attempts"][0]["latency_ms"] >= 0
    world.rt.provisioning.create_tenant("Other", tenant_id="others", actor="tests")
    for method, path in (("GET", f"webhooks/{bad_id}/deliveries"), ("POST", f"webhooks/{bad_id}/test")):
        assert world.admin(method, path, tenant="others", body={} if method == "POST" else None).status_code == 404
