"""E-mail notifications (mailto: endpoints) through the stack's SMTP relay: a real SMTP
server (aiosmtpd, STARTTLS verified against the stack's CA, AUTH with the password read
from the Secret Manager stand-in), reached by the production code unchanged. Each test
reads the messages of an address of its own from what the server received.

The expiry warnings travel the whole way: the daily scan records them (a clock the test
moves), the sweep publishes them to Pub/Sub (Google's emulator), a notify run takes them
from a subscription of the test's own and sends the mail.
"""

from __future__ import annotations

import email.utils
import json
import secrets
import time

import pytest
from google.api_core import exceptions as google_exceptions
from google.cloud.pubsub_v1 import SubscriberClient

from devstack.processes import free_port
from devstack.stack import MAIL_FROM
from shared.domain.email_notifications import message_id
from shared.google_secrets import secret_manager_client

DAY_MS = 86_400_000


@pytest.fixture
def dispatch(world):
    """The notify function's dispatch over a subscription of this test's own on the stack's
    topic (as in test_webhook_dispatch.py). run(): one notify run."""
    subscriber = SubscriberClient()
    topic = world.rt.settings.notify_topic
    name = f"{topic.split('/topics/')[0]}/subscriptions/mail-{secrets.token_hex(4)}"
    subscriber.create_subscription(name=name, topic=topic)
    world.reconfigure(notify_subscription=name)
    yield lambda: world.rt.webhook_dispatch.run(deadline=time.monotonic() + 30)
    subscriber.delete_subscription(subscription=name)
    subscriber.close()


@pytest.fixture
def mailbox(world):
    """The stack's SMTP relay (what it received: .received(address)); refusals set by a test are lifted after it."""
    relay = world.stack.mail
    made: list[str] = []

    def address(name: str = "ops") -> str:
        made.append(f"{name}-{secrets.token_hex(4)}@acme.example")
        return made[-1]

    relay.address = address
    yield relay
    for each in made:
        relay.answer(each, None)


def _mail_endpoint(world, address: str, **body) -> dict:
    answer = world.admin("POST", "webhooks", tenant=world.tenant, body={"url": f"mailto:{address}", **body})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def _run_until(dispatch, check, wait_s: float = 15):
    deadline = time.monotonic() + wait_s
    while True:
        report = dispatch()
        if check(report) or time.monotonic() > deadline:
            return report


def _scan(world) -> dict:
    token = world.stack.scheduler_token()
    response = world.clients["sweep"].post("/expiry", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _notification(mail) -> dict:
    """The notification JSON at the end of a mail's body."""
    body = mail.message.get_content()
    return json.loads(body[body.index("the notification as JSON:") + len("the notification as JSON:"):])


def test_expiry_warnings_arrive_by_e_mail_30_7_and_1_days_before_and_at_the_expiry_once_each(world, dispatch,
                                                                                             mailbox):
    address = mailbox.address("admin")
    made = _mail_endpoint(world, address)
    assert made["secret"] is None and "no signing secret" in made["notice"]
    assert made["webhook"]["events"] == ["license.expiring", "license.expired"]  # the default of an e-mail endpoint
    lic, _ = world.license(seats=1, expires_ms=world.clock.now_ms() + 40 * DAY_MS)
    assert _scan(world)["expiring"] == 0 and world.sweep()[0] == 200  # license.created: not wanted
    assert _run_until(dispatch, lambda r: r.received >= 1, wait_s=5).queued == 0

    expected = [(30, "license.expiring", f"License {lic.id} expires in 30 days ({world.tenant})"),
                (7, "license.expiring", f"License {lic.id} expires in 7 days ({world.tenant})"),
                (1, "license.expiring", f"License {lic.id} expires in 1 day ({world.tenant})"),
                (0, "license.expired", f"License {lic.id} has expired ({world.tenant})")]
    for days, kind, subject in expected:
        # half a day inside each warning's window; an hour past the expiry
        world.clock.set_ms(lic.expires_ms - int((days - 0.5) * DAY_MS) if days else lic.expires_ms + 3_600_000)
        assert _scan(world)["expired" if days == 0 else "expiring"] == 1
        assert world.sweep()[1]["published"] >= 1
        report = _run_until(dispatch, lambda r: r.delivered >= 1)
        assert (report.delivered, report.retrying, report.refused) == (1, 0, 0), report
        *_, mail = mailbox.received(address)
        event_id = f"{lic.id}:license.expired" if days == 0 else f"{lic.id}:license.expiring:{days}d"
        message = mail.message
        assert message["Subject"] == subject and message["To"] == address and message["From"] == MAIL_FROM
        assert message["Message-ID"] == message_id(event_id, "coditect.example")
        assert (message["Coditect-Event-Id"], message["Coditect-Event-Type"]) == (event_id, kind)
        assert email.utils.parsedate_to_datetime(message["Date"]).timestamp() == pytest.approx(
            world.clock.now_ms() / 1000, abs=1)  # the service's clock, the one the test moves
        body = message.get_content()
        assert f"License {lic.id} of tenant {world.tenant}" in body and "What to do:" in body
        notification = _notification(mail)
        assert (notification["id"], notification["type"], notification["license"], notification["tenant"]) == (
            event_id, kind, lic.id, world.tenant)
        if days:
            assert f"expires in {'1 day' if days == 1 else f'{days} days'}," in body
            assert notification["data"]["days"] == days and notification["data"]["expires_at"] in body
        else:
            assert notification["data"]["expired_at"] in body
        # through the relay as an operator's: STARTTLS first, then AUTH with the password from Secret Manager
        assert (mail.mail_from, mail.rcpt_tos, mail.tls, mail.authenticated_as) == (
            MAIL_FROM, (address,), True, mailbox.username)
        # repeated runs of everything send nothing more
        assert _scan(world) == {"scanned": 1, "expiring": 0, "expired": 0}
        assert world.sweep()[1]["published"] == 0 and dispatch().attempted == 0

    mails = mailbox.received(address)
    assert [m.message["Subject"] for m in mails] == [subject for *_, subject in expected]  # one each, in order
    log = world.admin("GET", f"webhooks/{made['webhook']['id']}/deliveries", tenant=world.tenant).get_json()
    assert sorted((d["type"], d["state"], [a["status"] for a in d["attempts"]]) for d in log["deliveries"]) == [
        ("license.expired", "delivered", [250])] + [("license.expiring", "delivered", [250])] * 3


def test_a_test_event_is_sent_to_an_e_mail_endpoint_which_has_no_secret_to_make_rotate_or_delete(world, mailbox):
    address = mailbox.address()
    made = _mail_endpoint(world, address, events=["license.suspended"], description="the on-call mailbox")
    webhook_id = made["webhook"]["id"]
    assert made["webhook"]["events"] == ["license.suspended"]  # named types: those, as for any endpoint
    sent = world.admin("POST", f"webhooks/{webhook_id}/test", tenant=world.tenant, body={})
    assert sent.status_code == 200, sent.get_json()
    answer = sent.get_json()
    assert (answer["delivered"], answer["status"], answer["state"], answer["error"]) == (True, 250, "delivered", None)
    [mail] = mailbox.received(address)
    assert mail.message["Subject"] == f"Test e-mail from the license server ({world.tenant})"
    assert mail.message["Coditect-Event-Id"] == answer["event"] and _notification(mail)["type"] == "webhook.test"

    # no secret in Secret Manager, none to rotate; deleting removes the endpoint alone
    client = secret_manager_client(world.rt.settings.secret_manager_endpoint)
    with pytest.raises(google_exceptions.NotFound):
        client.get_secret(name=f"{world.rt.settings.webhook_secret_prefix}{webhook_id}")
    rotated = world.admin("POST", f"webhooks/{webhook_id}/rotate", tenant=world.tenant, body={})
    assert rotated.status_code == 400
    assert rotated.get_json()["error"]["message"] == "an e-mail endpoint has no signing secret to rotate"
    # an e-mail endpoint stays one
    changed = world.admin("PATCH", f"webhooks/{webhook_id}", tenant=world.tenant,
                          body={"url": "https://hooks.example.com/x"})
    assert changed.status_code == 400 and "stays one" in changed.get_json()["error"]["message"]
    other = mailbox.address("other")
    moved = world.admin("PATCH", f"webhooks/{webhook_id}", tenant=world.tenant, body={"url": f"mailto:{other}"})
    assert moved.status_code == 200 and moved.get_json()["webhook"]["url"] == f"mailto:{other}"
    deleted = world.admin("DELETE", f"webhooks/{webhook_id}", tenant=world.tenant)
    assert deleted.status_code == 200 and deleted.get_json() == {"status": "deleted", "id": webhook_id}


def test_another_tenants_e_mail_endpoint_is_not_found(world, mailbox):
    address = mailbox.address()
    webhook_id = _mail_endpoint(world, address)["webhook"]["id"]
    world.rt.provisioning.create_tenant("Other", tenant_id="others", actor="tests")
    for method, path, body in (("GET", f"webhooks/{webhook_id}", None),
                               ("PATCH", f"webhooks/{webhook_id}", {"enabled": False}),
                               ("POST", f"webhooks/{webhook_id}/test", {}),
                               ("POST", f"webhooks/{webhook_id}/rotate", {}),
                               ("GET", f"webhooks/{webhook_id}/deliveries", None),
                               ("DELETE", f"webhooks/{webhook_id}", None)):
        answer = world.admin(method, path, tenant="others", body=body)
        assert answer.status_code == 404, (method, path, answer.get_json())
    assert world.admin("GET", f"webhooks/{webhook_id}", tenant=world.tenant).get_json()["webhook"]["enabled"]
    assert mailbox.received(address) == []  # no test event went out for the other tenant


def test_a_5xx_refusal_is_refused_for_good_and_a_4xx_or_a_relay_away_is_tried_again(world, mailbox):
    gone, busy = mailbox.address("gone"), mailbox.address("busy")
    gone_id = _mail_endpoint(world, gone)["webhook"]["id"]
    busy_id = _mail_endpoint(world, busy)["webhook"]["id"]
    mailbox.answer(gone, "550 5.1.1 no such mailbox")
    mailbox.answer(busy, "450 4.2.1 mailbox busy, try later")

    refused = world.admin("POST", f"webhooks/{gone_id}/test", tenant=world.tenant, body={}).get_json()
    assert (refused["delivered"], refused["status"], refused["state"]) == (False, 550, "refused")
    assert "550 5.1.1 no such mailbox" in refused["error"]
    later = world.admin("POST", f"webhooks/{busy_id}/test", tenant=world.tenant, body={}).get_json()
    assert (later["delivered"], later["status"], later["state"]) == (False, 450, "due")

    # the relay closed (a port nothing listens on): no answer, tried again
    world.reconfigure(smtp_port=free_port())
    away = world.admin("POST", f"webhooks/{busy_id}/test", tenant=world.tenant, body={}).get_json()
    assert (away["delivered"], away["status"], away["state"]) == (False, None, "due")
    assert "Connection" in away["error"]

    # the relay back, the mailbox free: the retries deliver on the webhooks' schedule
    dispatch = world.reconfigure(smtp_port=world.stack.mail.port, notify_subscription=None).webhook_dispatch
    mailbox.answer(busy, None)
    waits = []
    for delivery in sorted((d for d in world.rt.deliveries.recent(busy_id, limit=5) if d.state == "due"),
                           key=lambda d: d.next_ms):
        waits.append(round((delivery.next_ms - world.clock.now_ms()) / 1000))
    assert waits == [30, 30]  # each after its first failed attempt
    world.clock.advance(seconds=30)
    assert dispatch.run(deadline=time.monotonic() + 30).delivered == 2
    assert [m.message["Subject"] for m in mailbox.received(busy)] == [
        f"Test e-mail from the license server ({world.tenant})"] * 2
    assert mailbox.received(gone) == []
    world.clock.advance(seconds=3600)
    assert dispatch.run(deadline=time.monotonic() + 30).attempted == 0  # refused for good, delivered once


def test_nothing_in_a_notification_adds_a_header_or_a_recipient(world, mailbox):
    address = mailbox.address()
    endpoint = world.rt.store.get_webhook(_mail_endpoint(world, address)["webhook"]["id"])
    injected = "\r\nBcc: victim@evil.example\r\nX-Injected: yes"
    message = {"id": f"ev-1{injected}", "type": f"license.expiring{injected}", "time": "2027-03-14T05:00:00.000Z",
               "tenant": f"acme{injected}", "license": f"lic_0{injected}",
               "data": {"actor": "system", "days": f"7{injected}", "expires_at": f"soon{injected}"}}
    attempt = world.rt.webhook_delivery.attempt(message, endpoint)
    assert (attempt.delivered, attempt.status) == (True, 250), attempt
    [mail] = mailbox.received(address)
    assert mail.rcpt_tos == (address,)
    headers = mail.message
    assert headers["Bcc"] is None and headers["X-Injected"] is None
    assert all("\r" not in value and "\n" not in value for value in headers.values())
    assert headers["Coditect-Event-Id"] == "ev-1 Bcc: victim@evil.example X-Injected: yes"
    raw_headers = mail.raw.split(b"\r\n\r\n", 1)[0]
    assert not any(line.lower().startswith((b"bcc:", b"x-injected:")) for line in raw_headers.split(b"\r\n"))
    # the JSON in the body is the notification itself, as sent
    assert _notification(mail) == message
    for name, url in (("a percent-encoded line break", f"mailto:{address}%0D%0ABcc:victim@evil.example"),
                      ("headers", f"mailto:{address}?bcc=victim@evil.example"),
                      ("a second address", f"mailto:{address},victim@evil.example"),
                      ("a space", f"mailto:{address} victim@evil.example"),
                      ("an IP literal", "mailto:ops@[127.0.0.1]"), ("an IP address", "mailto:ops@127.0.0.1"),
                      ("no domain", "mailto:ops"), ("a quoted local part", 'mailto:"a b"@acme.example')):
        answer = world.admin("POST", "webhooks", tenant=world.tenant, body={"url": url})
        assert answer.status_code == 400 and answer.get_json()["error"]["field"] == "url", name


def test_without_an_smtp_relay_an_e_mail_endpoint_is_refused_and_nothing_changes(world):
    world.reconfigure(smtp_host=None)
    before = world.admin("GET", "webhooks", tenant=world.tenant).get_json()["webhooks"]
    events = len(world.rt.store.list_events(tenant_id=world.tenant, license_id=None))
    answer = world.admin("POST", "webhooks", tenant=world.tenant, body={"url": "mailto:ops@acme.example"})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["message"] == \
        "url: e-mail delivery is not configured on this service (SMTP_HOST)"
    assert world.admin("GET", "webhooks", tenant=world.tenant).get_json()["webhooks"] == before
    assert len(world.rt.store.list_events(tenant_id=world.tenant, license_id=None)) == events


def test_a_password_the_relay_refuses_is_read_again_from_secret_manager_and_the_mail_retried(world, mailbox):
    """The operator's fix (a new version of the secret) takes effect without a deploy."""
    secret = world.stack.secret_manager.put(world.stack.project_id, f"smtp-password-{secrets.token_hex(4)}", "stale")
    world.reconfigure(smtp_password_secret=secret)
    address = mailbox.address()
    webhook_id = _mail_endpoint(world, address)["webhook"]["id"]
    refused = world.admin("POST", f"webhooks/{webhook_id}/test", tenant=world.tenant, body={}).get_json()
    # the relay's refusal of our account is no refusal of the mail: tried again
    assert (refused["delivered"], refused["status"], refused["state"]) == (False, 535, "due")
    assert refused["error"].startswith("AUTH refused: 535")
    world.stack.secret_manager.put(world.stack.project_id, secret.rsplit("/", 1)[1], mailbox.password)
    sent = world.admin("POST", f"webhooks/{webhook_id}/test", tenant=world.tenant, body={}).get_json()
    assert (sent["delivered"], sent["status"]) == (True, 250), sent  # the kept "stale" refused, the new one read
    assert len(mailbox.received(address)) == 1
