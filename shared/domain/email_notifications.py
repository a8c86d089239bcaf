"""E-mail notifications: for an administrator without a webhook receiver, notifications
(by default the expiry warnings) by e-mail, through the SMTP relay the operator configures
(shared/smtp_mail.py sends; shared/licensing/webhook_delivery.py decides when).

An e-mail recipient is a notification endpoint (shared/domain/webhook_endpoints.py) whose
URL is ``mailto:<address>``, so it has everything an endpoint has (its tenant, its event
filter, enabling, the delivery log, test events, the retry schedule, parking, disabling)
but a signing secret: nothing signs an e-mail. One address, taken literally and checked
strictly (`mailto_problem`): a dot-atom local part, a host name of two labels or more, no
IP literal, no quoted string, no `?headers`, no percent-encoding, no list, no space or
control character. Nothing a tenant's administrator types can add a header or a
recipient to the mail; every header value made from a notification's data is cleaned of
line breaks and control characters as well (`header_text`), in case a record is damaged.

What is sent (`notification_mail`): a readable subject ("License lic_... expires in 7
days (acme)"), a plain-text body saying what happened and what to do, then the
notification as JSON; the event's id and type in headers of their own; a Message-ID made
from the event id (`message_id`), so a receiver that sees a retry sees the same message.

How an attempt is judged (`mail_delivered`, `mail_retryable`): the SMTP server's reply to
the message (its code is the attempt's status): 2xx delivered; 4xx, no answer, or a
failure of the service's own session with the relay (connection, STARTTLS, AUTH) tried
again on the webhooks' schedule; 5xx refused for good.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAILTO = "mailto:"
DEFAULT_EVENTS = ("license.expiring", "license.expired")
"""What an e-mail endpoint made without `events` receives: the expiry warnings."""
ADDRESS_MAX = 254  # RFC 5321's path limit, less its angle brackets
LOCAL_PART_MAX = 64
EVENT_ID_HEADER = "Coditect-Event-Id"
EVENT_TYPE_HEADER = "Coditect-Event-Type"
SUBJECT_MAX = 200

_ATOM = r"[A-Za-z0-9!$&'*+/=^_`{|}~-]+"  # RFC 5322 atext less "?", "%" and "#" (a URL's query, escape, fragment)
_LOCAL_PART = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def is_mailto(url: str) -> bool:
    """Whether an endpoint's URL names an e-mail address (its scheme, in any case)."""
    return isinstance(url, str) and url[:len(MAILTO)].lower() == MAILTO


def address_problem(address: str) -> str | None:
    """Why `address` may not receive notifications (or send them: MAIL_FROM), or None."""
    if not isinstance(address, str) or not address:
        return "no address"
    if len(address) > ADDRESS_MAX:
        return f"longer than {ADDRESS_MAX} characters"
    if any(not "\x21" <= c <= "\x7e" for c in address):
        return "only printable ASCII, no spaces or line breaks (IDNA-encode a non-ASCII domain)"
    for forbidden, why in ((",", "one address only"), ("?", "no ?headers or query"),
                           ("%", "no percent-encoding: write the address as it is"), ("#", "no fragment"),
                           ('"', "no quoted local part"), ("[", "no IP-literal domain"), ("]", "no IP-literal domain")):
        if forbidden in address:
            return why
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return "must be local-part@domain"
    if "@" in local:
        return "one @ only"
    if len(local) > LOCAL_PART_MAX:
        return f"a local part longer than {LOCAL_PART_MAX} characters"
    if not _LOCAL_PART.fullmatch(local):
        return "a local part of letters, digits and !$&'*+/=^_`{|}~- separated by single dots"
    labels = domain.lower().split(".")
    if len(labels) < 2:
        return "a domain of two labels or more (example.com)"
    if not all(_LABEL.fullmatch(label) for label in labels):
        return "a domain of letters, digits and hyphens, dot-separated (IDNA-encode a non-ASCII one)"
    if labels[-1].isdigit():
        return "an IP address is not a mail domain"
    return None


def mailto_problem(url: str) -> str | None:
    """Why `url` may not be an e-mail endpoint, or None (the address as `address_problem` says)."""
    if not is_mailto(url):
        return "not a mailto: URL"
    problem = address_problem(url[len(MAILTO):])
    return f"mailto: {problem}" if problem else None


def mailto_address(url: str) -> str:
    """The address of a mailto: URL (checked by `mailto_problem`)."""
    return url[len(MAILTO):]


def header_text(value: object, limit: int = SUBJECT_MAX) -> str:
    """`value` as one header line: control characters and line breaks (a header injection)
    become a space; at most `limit` characters."""
    text = _CONTROL.sub(" ", str(value)).strip()
    return text if len(text) <= limit else text[:limit - 3] + "..."


def message_id(event_id: str, domain: str) -> str:
    """The Message-ID of the mail of event `event_id` (the same for every attempt of it):
    the id's letters, digits, underscores, dots and hyphens, a digest of the whole id (so ids that
    differ only in other characters never share one), at `domain`."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", ".", event_id).strip(".")[:80] or "event"
    digest = hashlib.sha256(event_id.encode()).hexdigest()[:16]
    return f"<{readable}.{digest}@{domain}>"


@dataclass(frozen=True)
class NotificationMail:
    """What a notification says by e-mail; the mailer adds From, To, Date and Message-ID."""

    event_id: str
    event_type: str
    subject: str
    body: str

    def headers(self) -> dict[str, str]:
        """The event's own headers (each value one clean line)."""
        return {EVENT_ID_HEADER: header_text(self.event_id), EVENT_TYPE_HEADER: header_text(self.event_type)}


def _days(days: object) -> str:
    return "1 day" if days == 1 else f"{header_text(days)} days"


def notification_mail(message: Mapping[str, Any]) -> NotificationMail:
    """The mail of a notification (shared/domain/notifications.py message(), or a test event).
    Values from the notification are cleaned (`header_text`) wherever they stand in a
    sentence; the JSON at the end is the notification itself."""
    kind, tenant = header_text(message.get("type")), header_text(message.get("tenant"))
    license_id = header_text(message.get("license")) if message.get("license") else None
    data = message.get("data")
    details: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
    if kind == "license.expiring":
        days = _days(details.get("days"))
        subject = f"License {license_id} expires in {days} ({tenant})"
        said = (f"License {license_id} of tenant {tenant} expires in {days},\n"
                f"at {header_text(details.get('expires_at'))}.\n\n"
                "What to do: have your vendor renew it before then. Once it has expired,\n"
                "no seat of it can be taken: tools using it stop when their leases end.")
    elif kind == "license.expired":
        subject = f"License {license_id} has expired ({tenant})"
        said = (f"License {license_id} of tenant {tenant} expired\n"
                f"at {header_text(details.get('expired_at'))}.\n\n"
                "What to do: no seat of it can be taken any more. Have your vendor renew it\n"
                "(a later expiry): it works again at once.")
    elif kind == "webhook.test":
        subject = f"Test e-mail from the license server ({tenant})"
        said = (f"An administrator of tenant {tenant} asked for this test e-mail:\n"
                "notifications to this address arrive.")
    else:
        about = f"license {license_id}" if license_id else f"tenant {tenant}"
        subject = f"[license server] {kind}: {about}"
        said = f"A {kind} notification about {about}\n(tenant {tenant}): its details are below."
    body = (f"{said}\n\n"
            f"You receive this because an administrator of tenant {tenant} added this\n"
            "address to the license server's notifications; they can choose which ones\n"
            "it gets, or remove it (licensectl update-webhook, delete-webhook).\n\n"
            f"Event {header_text(message.get('id'))} ({kind})\n"
            f"at {header_text(message.get('time'))}; the notification as JSON:\n\n"
            f"{json.dumps(message, indent=2, sort_keys=True)}\n")
    return NotificationMail(event_id=str(message.get("id")), event_type=kind, subject=header_text(subject),
                            body=body)


@dataclass(frozen=True)
class MailSent:
    """How sending one mail went (shared/smtp_mail.py)."""

    status: int | None
    """The SMTP server's reply code: to the message (250), or to the command that failed; None: no answer."""
    error: str | None
    """What went wrong, in a line (never a password)."""
    latency_ms: int
    relay_failed: bool = False
    """The service's own session with the relay failed before the message was offered
    (connection refused, STARTTLS, AUTH, a greeting refusing service): the operator's to mend,
    never the recipient's refusal."""


def mail_delivered(sent: MailSent) -> bool:
    """The relay took the message: a 2xx reply to it."""
    return not sent.relay_failed and sent.status is not None and 200 <= sent.status < 300


def mail_retryable(sent: MailSent) -> bool:
    """Whether a failed attempt is tried again: yes for no answer, a 4xx (try later) or the
    relay session's failure; no for a 5xx reply to the message or a recipient (refused for
    good). Anything else (a 1xx or 3xx as a final reply) is a broken answer: tried again."""
    if mail_delivered(sent):
        return False
    if sent.relay_failed or sent.status is None:
        return True
    return not 500 <= sent.status < 600
