"""Delivering one notification to one webhook endpoint: check, sign, send, judge.

Every attempt checks the endpoint's host again, against every address it resolves to
(shared/domain/webhooks.py: private, loopback and metadata addresses are refused outside
the local stack), signs the body with each secret that signs now (the current one, and
the one before during a rotation's overlap), sends it to a checked address only
(shared/webhook_http.py), and judges the answer: delivered (2xx, 3xx), to be tried again
later (no answer, 5xx, 408, 429), or refused for good (any other 4xx, a refused address).
When to try again, and when to give up, are the domain's (next_attempt_delay_s,
GIVE_UP_AFTER_S); keeping the attempts is the caller's.

An e-mail endpoint (mailto:, shared/domain/email_notifications.py) is sent the
notification's mail through the relay (the Mailer) instead, and judged by the SMTP
server's reply, the attempt's status: 2xx delivered; 4xx, no answer or a failure of the
relay session tried again on the same schedule; 5xx refused for good.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.clock import Clock
from shared.domain.email_notifications import (
    is_mailto,
    mail_delivered,
    mail_retryable,
    mailto_address,
    mailto_problem,
    notification_mail,
)
from shared.domain.notifications import encoded
from shared.domain.webhook_endpoints import Delivery, WebhookEndpoint
from shared.domain.webhooks import (
    GIVE_UP_AFTER_S,
    RETRYABLE,
    Resolver,
    WebhookAddressError,
    delivered,
    next_attempt_delay_s,
    resolve_and_check,
    signature_headers,
)
from shared.errors import BackendUnavailable
from shared.licensing.ports import Mailer, SecretText, WebhookPost

USER_AGENT = "coditect-license-webhooks/1"


@dataclass(frozen=True)
class Attempt:
    at_ms: int
    status: int | None
    error: str | None
    latency_ms: int
    delivered: bool
    retry: bool  # failed, and worth trying again later

    def as_json(self) -> dict[str, Any]:
        return {"at_ms": self.at_ms, "status": self.status, "error": self.error, "latency_ms": self.latency_ms,
                "delivered": self.delivered, "retry": self.retry}


def next_state(delivery: Delivery, attempt: Attempt) -> tuple[str, int | None]:
    """What `attempt` makes of `delivery`: its state (delivered | refused | due | parked) and,
    when due, when it is attempted next (the retry schedule; parked past 24 hours of it)."""
    if attempt.delivered:
        return "delivered", None
    if not attempt.retry:
        return "refused", None
    next_ms = attempt.at_ms + next_attempt_delay_s(delivery.attempt_count + 1) * 1000
    if next_ms - delivery.first_ms > GIVE_UP_AFTER_S * 1000:
        return "parked", None
    return "due", next_ms


class WebhookDelivery:
    def __init__(self, *, secrets: SecretText, sender: WebhookPost, clock: Clock, allow_private: bool,
                 resolver: Resolver = socket.getaddrinfo, mailer: Mailer | None = None):
        self._secrets = secrets
        self._sender = sender
        self._clock = clock
        self._allow_private = allow_private
        self._resolver = resolver
        self._mailer = mailer  # None: SMTP_HOST unset, no e-mail is sent

    def attempt(self, message: dict[str, Any], endpoint: WebhookEndpoint) -> Attempt:
        if is_mailto(endpoint.url):
            return self._email(message, endpoint)
        now = self._clock.now_ms()
        body = encoded(message).encode()
        parts = urlsplit(endpoint.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = resolve_and_check(parts.hostname or "", port, allow_private=self._allow_private,
                                          resolver=self._resolver)
        except WebhookAddressError as refused:
            return Attempt(now, None, str(refused), 0, delivered=False, retry=False)
        try:
            secrets = [self._secrets.text(version.name) for version in endpoint.signing_versions(now)]
        except BackendUnavailable:  # Secret Manager away (or the secret deleted under us): later
            return Attempt(now, None, "the signing secret could not be read", 0, delivered=False, retry=True)
        headers = {**signature_headers(body, str(message["id"]), str(message["type"]), secrets, now // 1000),
                   "Content-Type": "application/json", "User-Agent": USER_AGENT}
        sent = self._sender.post(endpoint.url, addresses[0], body, headers)
        ok = delivered(sent.status)
        return Attempt(now, sent.status, sent.error, sent.latency_ms, delivered=ok,
                       retry=not ok and RETRYABLE(sent.status))

    def _email(self, message: dict[str, Any], endpoint: WebhookEndpoint) -> Attempt:
        now = self._clock.now_ms()
        problem = mailto_problem(endpoint.url)  # checked when saved: a damaged record is refused, never sent
        if problem is not None:
            return Attempt(now, None, f"address refused: {problem}", 0, delivered=False, retry=False)
        if self._mailer is None:  # the operator may configure it yet: tried again, parked after 24 hours
            return Attempt(now, None, "e-mail delivery is not configured on this service (SMTP_HOST)", 0,
                           delivered=False, retry=True)
        sent = self._mailer.send(mailto_address(endpoint.url), notification_mail(message), at_ms=now)
        return Attempt(now, sent.status, sent.error, sent.latency_ms, delivered=mail_delivered(sent),
                       retry=mail_retryable(sent))
