"""E-mail notifications' rules (shared/domain/email_notifications.py): which mailto: URLs are
taken, what a mail says, and how an attempt is judged."""

from __future__ import annotations

import pytest

from shared.domain.email_notifications import (
    MailSent,
    header_text,
    is_mailto,
    mail_delivered,
    mail_retryable,
    mailto_address,
    mailto_problem,
    message_id,
    notification_mail,
)


@pytest.mark.parametrize("url", ["mailto:ops@acme.example", "MAILTO:ops@acme.example", "mailto:o.p-s+x@mail.acme.co",
                                 "mailto:" + "a" * 64 + "@acme.example", "mailto:x@" + "a" * 60 + ".example"])
def test_a_plain_address_is_taken(url):
    assert is_mailto(url) and mailto_problem(url) is None and mailto_address(url) == url[7:]


@pytest.mark.parametrize("url, why", [
    ("mailto:ops@acme.example\r\nBcc: x@evil.example", "printable ASCII"),
    ("mailto:ops@acme.example%0D%0ABcc:x@evil.example", "percent"),
    ("mailto:ops@acme.example?bcc=x@evil.example", "?headers"),
    ("mailto:ops@acme.example,x@evil.example", "one address"),
    ("mailto:ops@acme.example x@evil.example", "printable ASCII"),
    ("mailto:ops@[127.0.0.1]", "IP-literal"),
    ("mailto:ops@127.0.0.1", "IP address"),
    ("mailto:ops@localhost", "two labels"),
    ("mailto:ops", "local-part@domain"),
    ("mailto:@acme.example", "local-part@domain"),
    ('mailto:"ops"@acme.example', "quoted"),
    ("mailto:a@b@acme.example", "one @"),
    ("mailto:.ops@acme.example", "single dots"),
    ("mailto:o..ps@acme.example", "single dots"),
    ("mailto:ops@-acme.example", "hyphens"),
    ("mailto:ops@acme.example#x", "fragment"),
    ("mailto:ops@ácme.example", "printable ASCII"),
    ("mailto:" + "a" * 65 + "@acme.example", "local part longer"),
    ("mailto:a@" + "b" * 250 + ".example", "longer than 254"),
    ("https://hooks.example.com/x", "not a mailto"),
])
def test_anything_else_is_refused_saying_why(url, why):
    problem = mailto_problem(url)
    assert problem is not None and why in problem, (url, problem)


def test_header_text_is_one_clean_line():
    assert header_text("a\r\nBcc: x\x00y\u2028z\tw") == "a Bcc: x y z w"
    assert len(header_text("x" * 500)) == 200 and header_text("x" * 500).endswith("...")


def test_the_message_id_is_the_events_and_tells_ids_apart():
    assert message_id("lic_1:license.expiring:7d", "acme.example") == message_id("lic_1:license.expiring:7d",
                                                                                  "acme.example")
    first, second = message_id("a:b", "x.example"), message_id("a.b", "x.example")
    assert first != second and first.startswith("<a.b.") and first.endswith("@x.example>")
    assert "\r" not in message_id("a\r\nb", "x.example") and " " not in message_id("a b", "x.example")


def test_an_expiry_warning_reads_as_one():
    message = {"id": "lic_1:license.expiring:1d", "type": "license.expiring", "time": "2027-03-13T06:00:00.000Z",
               "tenant": "acme", "license": "lic_1",
               "data": {"actor": "system", "days": 1, "expires_at": "2027-03-14T05:00:00.000Z"}}
    mail = notification_mail(message)
    assert mail.subject == "License lic_1 expires in 1 day (acme)"
    assert "expires in 1 day,\nat 2027-03-14T05:00:00.000Z." in mail.body and "What to do:" in mail.body
    assert mail.headers() == {"Coditect-Event-Id": "lic_1:license.expiring:1d",
                              "Coditect-Event-Type": "license.expiring"}
    expired = notification_mail({**message, "type": "license.expired", "data": {"expired_at": "2027-03-14T05Z"}})
    assert expired.subject == "License lic_1 has expired (acme)" and "expired\nat 2027-03-14T05Z." in expired.body
    other = notification_mail({**message, "type": "seats.exhausted"})
    assert other.subject == "[license server] seats.exhausted: license lic_1"


@pytest.mark.parametrize("sent, delivered, retry", [
    (MailSent(250, None, 5), True, False),
    (MailSent(450, "busy", 5), False, True),
    (MailSent(421, "closing", 5), False, True),
    (MailSent(None, "ConnectionRefusedError", 5), False, True),
    (MailSent(550, "no such user", 5), False, False),
    (MailSent(554, "rejected", 5), False, False),
    (MailSent(535, "AUTH refused", 5, relay_failed=True), False, True),  # the operator's password, not the recipient
    (MailSent(354, "odd", 5), False, True),
])
def test_an_attempt_is_judged_by_the_reply_to_the_message(sent, delivered, retry):
    assert (mail_delivered(sent), mail_retryable(sent)) == (delivered, retry)
