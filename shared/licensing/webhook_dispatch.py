"""Getting notifications to webhook endpoints: the notify function's run (every minute).

    take     pull what the delivery subscription holds; each notification becomes one due
             delivery per endpoint of its tenant that wants its type (recorded durably,
             once: deterministic ids), then is acknowledged. One that cannot be read is
             handed back (nack): Pub/Sub redelivers it and, after the subscription's
             attempts, moves it to the dead-letter topic, where an operator can read it.
    deliver  attempt the deliveries that are due (shared/licensing/webhook_delivery.py):
             delivered; or to be tried again after next_attempt_delay_s, until 24 hours
             after the first attempt, then parked; or refused for good (a 4xx but 408/429,
             an address refused). A delivery whose endpoint is gone or disabled is parked.
    watch    an endpoint whose deliveries have failed without a success for 24 hours (or
             whose delivery was given up after its 24 hours of retries) is disabled, with an
             audit event (enabling it again is the administrator's).
The run stops at its deadline and the next goes on; every step is idempotent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any

from shared.clock import Clock
from shared.domain import AuditEvent
from shared.domain.notifications import NOTIFICATION_TYPES, encoded
from shared.domain.webhook_endpoints import MAX_ENDPOINTS_PER_TENANT, Delivery, WebhookEndpoint
from shared.domain.webhooks import GIVE_UP_AFTER_S
from shared.errors import NotFound
from shared.ids import IdGenerator
from shared.licensing.ports import DeliveryRecord, DurableRecord, NotificationInbox
from shared.licensing.webhook_delivery import Attempt, WebhookDelivery, next_state

PULL = 200
DUE_PER_RUN = 200


@dataclass
class DispatchReport:
    received: int = 0
    queued: int = 0
    unreadable: int = 0
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    parked: int = 0
    refused: int = 0
    disabled: int = 0

    def as_json(self) -> dict[str, int]:
        return dict(self.__dict__)


class WebhookDispatch:
    def __init__(self, *, store: DurableRecord, deliveries: DeliveryRecord, inbox: NotificationInbox | None,
                 delivery: WebhookDelivery, clock: Clock, ids: IdGenerator):
        self._store = store
        self._deliveries = deliveries
        self._inbox = inbox
        self._delivery = delivery
        self._clock = clock
        self._ids = ids

    def run(self, deadline: float) -> DispatchReport:
        report = DispatchReport()
        self._take(report)
        self._deliver(report, deadline)
        return report

    # -- take ---------------------------------------------------------------------------------
    def _take(self, report: DispatchReport) -> None:
        if self._inbox is None:
            return
        pulled = self._inbox.pull(max_messages=PULL)
        report.received = len(pulled)
        done, unreadable = [], []
        endpoints: dict[str, list[WebhookEndpoint]] = {}
        for ack_id, message in pulled:
            if not _readable(message):
                unreadable.append(ack_id)
                continue
            assert message is not None
            tenant = str(message["tenant"])
            if tenant not in endpoints:
                endpoints[tenant] = self._store.list_webhooks(tenant_id=tenant, limit=MAX_ENDPOINTS_PER_TENANT)
            body = encoded(message)
            for endpoint in endpoints[tenant]:
                if endpoint.wants(str(message["type"])):
                    made = self._deliveries.create(
                        tenant_id=tenant, endpoint_id=endpoint.id, event_id=str(message["id"]),
                        type_=str(message["type"]), message=body, now_ms=self._clock.now_ms())
                    report.queued += made is not None
            done.append(ack_id)
        self._inbox.ack(done)
        self._inbox.nack(unreadable)
        report.unreadable = len(unreadable)

    # -- deliver ------------------------------------------------------------------------------
    def _deliver(self, report: DispatchReport, deadline: float) -> None:
        outcomes: dict[str, list[Attempt]] = {}
        gave_up: set[str] = set()  # endpoints a delivery was parked for, after 24 hours of retries
        for delivery in self._deliveries.due(now_ms=self._clock.now_ms(), limit=DUE_PER_RUN):
            if time.monotonic() >= deadline:
                break
            endpoint = self._store.get_webhook(delivery.endpoint_id)
            now = self._clock.now_ms()
            if endpoint is None or not endpoint.enabled:
                self._deliveries.record(delivery, state="parked", attempt=None, next_ms=None, now_ms=now)
                report.parked += 1
                continue
            attempt = self._delivery.attempt(json.loads(delivery.message), endpoint)
            report.attempted += 1
            outcomes.setdefault(endpoint.id, []).append(attempt)
            if self._record(delivery, attempt, report) == "parked":
                gave_up.add(endpoint.id)
        for endpoint_id, attempts in outcomes.items():
            self._watch(endpoint_id, attempts, report, gave_up=endpoint_id in gave_up)

    def _record(self, delivery: Delivery, attempt: Attempt, report: DispatchReport) -> str:
        """Record the attempt; the delivery's new state."""
        state, next_ms = next_state(delivery, attempt)
        if state == "delivered":
            report.delivered += 1
        elif state == "refused":
            report.refused += 1
        elif state == "parked":
            report.parked += 1
        else:
            report.retrying += 1
        self._deliveries.record(delivery, state=state, attempt=attempt.as_json(), next_ms=next_ms,
                                now_ms=attempt.at_ms)
        return state

    # -- watch ----------------------------------------------------------------------------------
    def _watch(self, endpoint_id: str, attempts: list[Attempt], report: DispatchReport, *, gave_up: bool) -> None:
        """Note when an endpoint started failing; disable it once it has failed for 24 hours
        (or a delivery was given up after its 24 hours of retries, with no success since)."""
        succeeded = any(a.delivered for a in attempts)
        first_failure = min((a.at_ms for a in attempts if not a.delivered), default=None)

        def overdue(since: int | None) -> bool:
            return since is not None and (gave_up or self._clock.now_ms() - since >= GIVE_UP_AFTER_S * 1000)

        def change(endpoint: WebhookEndpoint) -> tuple[WebhookEndpoint, AuditEvent]:
            if succeeded:
                changed = replace(endpoint, failing_since_ms=None)
            else:
                since = endpoint.failing_since_ms or first_failure
                changed = replace(endpoint, failing_since_ms=since)
                if endpoint.enabled and overdue(since):
                    changed = replace(changed, enabled=False,
                                      disabled_reason="every delivery failed for 24 hours")
            kind = "webhook.disable" if endpoint.enabled and not changed.enabled else "webhook.health"
            return changed, AuditEvent(self._ids.event_id(), endpoint.tenant_id, None, kind, "system",
                                       self._clock.now_ms(), details={"webhook": endpoint.id,
                                                                      "failing_since_ms": changed.failing_since_ms})

        try:
            before = self._store.get_webhook(endpoint_id)
            if before is None or (succeeded and before.failing_since_ms is None) or \
                    (not succeeded and before.failing_since_ms is not None
                     and not (before.enabled and overdue(before.failing_since_ms))):
                return  # nothing changes: no write
            after = self._store.update_webhook(endpoint_id, change)
        except NotFound:
            return
        if before.enabled and not after.enabled:
            report.disabled += 1


def _readable(message: dict[str, Any] | None) -> bool:
    return (isinstance(message, dict) and isinstance(message.get("id"), str) and isinstance(message.get("tenant"), str)
            and message.get("type") in NOTIFICATION_TYPES)
