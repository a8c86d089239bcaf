"""Webhook endpoints, administered (the admin function's webhooks routes).

A tenant's admin (or the owner, naming the tenant) makes, lists, changes, rotates the
secret of and deletes the tenant's endpoints (shared/domain/webhook_endpoints.py). The
URL is checked when it is set (https; no userinfo, fragment or private-looking host: shared/
domain/webhooks.py) and again at every delivery, against every address it resolves to.
An endpoint's signing secret is made here, put in Secret Manager under the endpoint's id
(WEBHOOK_SECRET_PREFIX), and given back once, in the answer that made or rotated it. Each
change is an audit event. Another tenant's endpoint is 404, as for no endpoint.

An e-mail endpoint (URL mailto:<address>: shared/domain/email_notifications.py) is made
and kept the same way but has no secret (none is made, rotated or deleted); made without
`events`, it gets the expiry warnings (DEFAULT_EVENTS). It can be made only where the
service sends e-mail (SMTP_HOST), and stays an e-mail endpoint (its URL cannot become a
webhook's, nor a webhook's a mailto:).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shared.clock import Clock
from shared.domain import AuditEvent, Principal
from shared.domain.email_notifications import DEFAULT_EVENTS, is_mailto, mailto_problem
from shared.domain.notifications import encoded
from shared.domain.times import rfc3339
from shared.domain.webhook_endpoints import MAX_ENDPOINTS_PER_TENANT, SecretVersion, WebhookEndpoint
from shared.domain.webhooks import new_webhook_secret, webhook_url_problem
from shared.errors import BackendUnavailable, InvalidRequest, NotFound
from shared.ids import WEBHOOK_ID, IdGenerator, new_webhook_id
from shared.licensing.access import require_admin, tenant_scope
from shared.licensing.admin_requests import (
    CreateWebhookRequest,
    DeliveriesQuery,
    RotateWebhookRequest,
    UpdateWebhookRequest,
    WebhooksQuery,
)
from shared.licensing.ports import DeliveryRecord, DurableRecord, WebhookSecrets
from shared.licensing.webhook_delivery import WebhookDelivery, next_state

TEST_EVENT = "webhook.test"
"""A delivery an administrator asked for, to check an endpoint (never published)."""


class WebhookAdmin:
    def __init__(self, *, store: DurableRecord, secrets: WebhookSecrets | None, clock: Clock, ids: IdGenerator,
                 allow_private: bool, deliveries: DeliveryRecord | None = None,
                 delivery: WebhookDelivery | None = None, sends_mail: bool = False):
        self._store = store
        self._secrets = secrets
        self._clock = clock
        self._ids = ids
        self._allow_private = allow_private
        self._deliveries = deliveries
        self._delivery = delivery
        self._sends_mail = sends_mail  # SMTP_HOST is set: e-mail endpoints can be made

    def _secret_store(self) -> WebhookSecrets:
        if self._secrets is None:  # WEBHOOK_SECRET_PREFIX unset: nowhere to keep a secret
            raise BackendUnavailable("secret manager (webhook secrets are not configured)")
        return self._secrets

    def _url(self, url: str) -> str:
        if is_mailto(url):
            if not self._sends_mail:
                raise InvalidRequest("url: e-mail delivery is not configured on this service (SMTP_HOST)",
                                     field="url")
            problem = mailto_problem(url)
        else:
            problem = webhook_url_problem(url, allow_private=self._allow_private)
        if problem is not None:
            raise InvalidRequest(f"url: {problem}", field="url")
        return url

    def _visible(self, caller: Principal, webhook_id: str) -> WebhookEndpoint:
        require_admin(caller)
        endpoint = self._store.get_webhook(webhook_id) if WEBHOOK_ID.fullmatch(webhook_id) else None
        if endpoint is None or not caller.administers(endpoint.tenant_id):
            raise NotFound(f"no webhook {webhook_id}")
        return endpoint

    def _event(self, caller: Principal, endpoint: WebhookEndpoint, kind: str, **details: Any) -> AuditEvent:
        return AuditEvent(self._ids.event_id(), endpoint.tenant_id, None, kind, caller.uid, self._clock.now_ms(),
                          details={"webhook": endpoint.id, **details})

    def _view(self, endpoint: WebhookEndpoint) -> dict[str, Any]:
        return endpoint.admin_view(self._clock.now_ms())

    # -- the routes ---------------------------------------------------------------------------
    def create(self, caller: Principal, request: CreateWebhookRequest) -> dict[str, Any]:
        require_admin(caller)
        if caller.is_owner:
            if request.tenant is None:
                raise InvalidRequest("tenant: the owner names the tenant whose endpoint this is", field="tenant")
            if self._store.get_tenant(request.tenant) is None:
                raise NotFound(f"no tenant {request.tenant}")
            tenant_id = request.tenant
        else:
            tenant_id = tenant_scope(caller, None) or ""
            if request.tenant not in (None, tenant_id):
                raise NotFound(f"no tenant {request.tenant}")
        url = self._url(request.url)
        if len(self._store.list_webhooks(tenant_id=tenant_id, limit=MAX_ENDPOINTS_PER_TENANT)) \
                >= MAX_ENDPOINTS_PER_TENANT:
            raise InvalidRequest(f"a tenant has at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints")
        webhook_id, email = new_webhook_id(), is_mailto(url)
        events = tuple(dict.fromkeys(request.events)) or (DEFAULT_EVENTS if email else ())
        secret = None if email else new_webhook_secret()  # an e-mail is not signed
        versions = () if secret is None else (SecretVersion(self._secret_store().create(webhook_id, secret)),)
        endpoint = WebhookEndpoint(
            id=webhook_id, tenant_id=tenant_id, url=url, events=events, description=request.description,
            created_ms=self._clock.now_ms(), created_by=caller.uid, secret_versions=versions)
        try:
            self._store.create_webhook(endpoint, self._event(caller, endpoint, "webhook.create", url=url,
                                                             events=list(endpoint.events)))
        except BaseException:
            if secret is not None:
                self._secret_store().delete(webhook_id)  # no endpoint, no secret
            raise
        if secret is None:
            return {"webhook": self._view(endpoint), "secret": None,
                    "notice": "an e-mail endpoint has no signing secret: notifications are sent to the address "
                              "through the service's SMTP relay"}
        return {"webhook": self._view(endpoint), "secret": secret,
                "notice": "the secret is shown this once: keep it where the receiver can read it"}

    def list(self, caller: Principal, query: WebhooksQuery) -> dict[str, Any]:
        require_admin(caller)
        scope = tenant_scope(caller, query.tenant)
        if query.tenant and scope != query.tenant:
            return {"webhooks": [], "next_after": None}
        found = self._store.list_webhooks(tenant_id=scope, after=query.after or "", limit=query.limit)
        return {"webhooks": [self._view(e) for e in found], "next_after": found[-1].id if found else None}

    def get(self, caller: Principal, webhook_id: str) -> dict[str, Any]:
        return {"webhook": self._view(self._visible(caller, webhook_id))}

    def update(self, caller: Principal, webhook_id: str, request: UpdateWebhookRequest) -> dict[str, Any]:
        existing = self._visible(caller, webhook_id)
        url = self._url(request.url) if request.url is not None else None
        if url is not None and is_mailto(url) != is_mailto(existing.url):
            # an e-mail endpoint has no secret to sign a webhook with (and a webhook's would be left over)
            raise InvalidRequest("url: an e-mail endpoint stays one, and a webhook stays a webhook: make a new "
                                 "endpoint for the other kind", field="url")

        def change(endpoint: WebhookEndpoint) -> tuple[WebhookEndpoint, AuditEvent]:
            changed = replace(
                endpoint,
                url=url if url is not None else endpoint.url,
                events=tuple(dict.fromkeys(request.events)) if request.events is not None else endpoint.events,
                description=request.description if request.description is not None else endpoint.description,
                enabled=request.enabled if request.enabled is not None else endpoint.enabled,
                # enabling again clears why the service disabled it, and its failures' start
                disabled_reason=None if request.enabled else endpoint.disabled_reason,
                failing_since_ms=None if request.enabled else endpoint.failing_since_ms,
            )
            before, after = self._view(endpoint), self._view(changed)
            diff = {k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k]}
            return changed, self._event(caller, endpoint, "webhook.update", changes=diff)

        return {"webhook": self._view(self._store.update_webhook(webhook_id, change))}

    def rotate(self, caller: Principal, webhook_id: str, request: RotateWebhookRequest) -> dict[str, Any]:
        """A new secret (shown once); the one before signs beside it for the overlap."""
        endpoint = self._visible(caller, webhook_id)
        if is_mailto(endpoint.url):
            raise InvalidRequest("an e-mail endpoint has no signing secret to rotate")
        secret = new_webhook_secret()
        version = self._secret_store().add(endpoint.id, secret)
        now = self._clock.now_ms()

        def change(current: WebhookEndpoint) -> tuple[WebhookEndpoint, AuditEvent]:
            rotated = current.rotated(version, now_ms=now, overlap_s=request.overlap_s)
            return rotated, self._event(caller, current, "webhook.rotate", overlap_s=request.overlap_s)

        rotated = self._store.update_webhook(endpoint.id, change)
        return {"webhook": self._view(rotated), "secret": secret,
                "notice": (f"the secret is shown this once; the one before keeps signing beside it for "
                           f"{request.overlap_s} s" if request.overlap_s else
                           "the secret is shown this once; the one before no longer signs")}

    def delete(self, caller: Principal, webhook_id: str) -> dict[str, Any]:
        endpoint = self._visible(caller, webhook_id)
        self._store.delete_webhook(endpoint.id, self._event(caller, endpoint, "webhook.delete", url=endpoint.url))
        if not is_mailto(endpoint.url):
            self._secret_store().delete(endpoint.id)
        return {"status": "deleted", "id": endpoint.id}

    # -- the delivery log, and a test event --------------------------------------------------------
    def deliveries(self, caller: Principal, webhook_id: str, query: DeliveriesQuery) -> dict[str, Any]:
        """The endpoint's latest deliveries, each with its last attempts (status, latency, error)."""
        endpoint = self._visible(caller, webhook_id)
        if self._deliveries is None:
            raise BackendUnavailable("firestore (deliveries are not configured)")
        return {"webhook": endpoint.id, "deliveries": [
            {"event": d.event_id, "type": d.type, "state": d.state, "attempt_count": d.attempt_count,
             "first_at": rfc3339(d.first_ms), "next_attempt_at": rfc3339(d.next_ms) if d.state == "due" else None,
             "attempts": [{"at": rfc3339(a["at_ms"]), "status": a["status"], "latency_ms": a["latency_ms"],
                           "error": a["error"]} for a in reversed(d.attempts)]}
            for d in self._deliveries.recent(endpoint.id, limit=query.limit)]}

    def send_test(self, caller: Principal, webhook_id: str) -> dict[str, Any]:
        """Deliver a `webhook.test` event to this endpoint now (its answer in this answer; a
        retryable failure is tried again on the schedule, as any delivery)."""
        endpoint = self._visible(caller, webhook_id)
        if self._deliveries is None or self._delivery is None:
            raise BackendUnavailable("webhook delivery (not configured)")
        now = self._clock.now_ms()
        event_id = f"test-{self._ids.event_id()}"
        message = {"id": event_id, "type": TEST_EVENT, "time": rfc3339(now), "tenant": endpoint.tenant_id,
                   "license": None, "data": {"actor": caller.uid, "webhook": endpoint.id}}
        delivery = self._deliveries.create(tenant_id=endpoint.tenant_id, endpoint_id=endpoint.id, event_id=event_id,
                                           type_=TEST_EVENT, message=encoded(message), now_ms=now)
        assert delivery is not None  # a new event id
        attempt = self._delivery.attempt(message, endpoint)
        state, next_ms = next_state(delivery, attempt)
        self._deliveries.record(delivery, state=state, attempt=attempt.as_json(), next_ms=next_ms,
                                now_ms=attempt.at_ms)
        return {"event": event_id, "delivered": attempt.delivered, "status": attempt.status, "error": attempt.error,
                "latency_ms": attempt.latency_ms, "state": state}
