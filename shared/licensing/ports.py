"""The ports: what the use cases need from the outside world, as small Protocols.

The use cases (this package) are written against these; the adapters implement them:
    SeatLedger, SweepLedger   shared/seats    (Redis Lua scripts)
    DurableRecord             shared/store    (Firestore)
    UsageRecord               shared/store    (Firestore: the usage history)
    LeaseSigner, LeaseProof   shared/tokens   (KMS-rooted delegate keys; checking our tokens)
    RateLimiter               shared/ratelimit
    NotificationPublisher, NotificationInbox  shared/pubsub (Pub/Sub)
    DeliveryRecord            shared/store    (Firestore: webhook deliveries)
    WebhookSecrets            shared/webhook_secrets.py (Secret Manager)
    Mailer                    shared/smtp_mail.py (the operator's SMTP relay)
so a use case reads without its adapters, and a test can hand it any implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from shared.domain import AuditEvent, EndReason, License, Limit, MachineKey, SessionEnd, SessionRecord, Tenant
from shared.domain.anomalies import Finding, Flag, Raised, Signals
from shared.domain.email_notifications import MailSent, NotificationMail
from shared.domain.leases import (
    AcquireOutcome,
    HeartbeatOutcome,
    LeaseRecord,
    QueueTicket,
    ReleaseOutcome,
    RestoreEntry,
    SeatCount,
    SweepBatch,
)
from shared.domain.webhook_endpoints import Delivery, WebhookEndpoint


class SeatLedger(Protocol):
    """Who holds a seat now, license by license: the hot path and the administrators' reads."""

    def generation(self, license_id: str) -> str:
        """The license's metadata generation (read before the license itself)."""

    def bump_generation(self, license_id: str) -> None:
        """Make every cached copy of the license stale (after a change)."""

    def acquire(self, license_id: str, *, generation: str, now_ms: int, ttl_ms: int, max_seats: int, uid: str,
                hardware_id: str, new_session_id: str, max_sessions_per_user: int = 0,
                policy: dict[str, Any] | None = None, groups: tuple[str, ...] = (), ticket: str | None = None,
                wait: bool = False, new_ticket: str = "", shown: dict[str, Any] | None = None) -> AcquireOutcome: ...

    def cancel_ticket(self, license_id: str, ticket: str, *, caller_uid: str, may_act_for_others: bool) -> str: ...

    def queue(self, license_id: str, *, limit: int = 500) -> list[QueueTicket]: ...

    def remove_ticket(self, license_id: str, ticket: str) -> QueueTicket | None:
        """An administrator takes a ticket out of the queue: the ticket, or None if not queued."""

    def heartbeat(self, license_id: str, session_id: str, *, generation: str, now_ms: int, ttl_ms: int,
                  caller_uid: str, may_act_for_others: bool, revive_window_ms: int = 0, max_seats: int = 0,
                  borrow: bool = False, proven: bool | None = None,
                  policy: dict[str, Any] | None = None) -> HeartbeatOutcome: ...

    def release(self, license_id: str, session_id: str, *, now_ms: int, caller_uid: str, may_act_for_others: bool,
                end: EndReason = EndReason.RELEASED, offline_grace_ms: int = 0,
                license_end_ms: int | None = None) -> ReleaseOutcome: ...

    def rollback(self, license_id: str, session_id: str, *, now_ms: int) -> None:
        """Erase a grant whose durable record could not be written."""

    def count(self, license_id: str, *, generation: str, now_ms: int) -> SeatCount: ...

    def settled(self, license_id: str, session_ids: list[str]) -> None:
        """Forget ends the durable record now holds."""

    def index_license(self, license_id: str) -> None:
        """Tell the sweep the license has leases."""

    def lock_rebuild(self, license_id: str, *, ttl_ms: int) -> str | None:
        """Become the one rebuilding the license's table: a token, or None if another is."""

    def trusted(self, license_id: str) -> bool:
        """Whether the license's table was rebuilt in the seat store's current process."""

    def rebuilding(self, license_id: str) -> bool:
        """Whether someone holds the license's rebuild lock now."""

    def unlock_rebuild(self, license_id: str, token: str) -> None: ...

    def restore(self, license_id: str, entries: list[RestoreEntry], *, now_ms: int, ttl_ms: int,
                complete: bool) -> list[str] | None:
        """Put back what the durable record counts; `complete`: the table is trusted again
        (None: it was already, nothing done)."""

    def count_revival(self) -> None: ...

    def live_sessions(self, license_id: str, *, now_ms: int, limit: int = 1000) -> list[LeaseRecord]: ...

    def live_count(self, license_id: str, *, now_ms: int) -> int:
        """Seats of max_seats counted now (the CI pool's leases not among them)."""

    def seat_use(self, license_id: str, *, now_ms: int) -> tuple[int, int]:
        """(seats of max_seats counted now, seats of the CI pool held now)."""

    def seat_use_many(self, license_ids: list[str], *, now_ms: int) -> list[tuple[int, int]]:
        """seat_use of each (one round trip)."""

    def known_sessions(self, license_id: str, session_ids: list[str]) -> set[str]:
        """Which of these sessions the license's table has a record of (live or ended)."""

    def lease_records(self, license_id: str, session_ids: list[str]) -> dict[str, LeaseRecord]:
        """The table's records of these sessions (live or ended), by id, for those it has."""

    def count_denial(self, license_id: str, *, now_ms: int, reason: str) -> bool:
        """Count an acquire refused before the seat table was asked (a DENIAL_REASONS value);
        False if the table awaits its rebuild (nothing counted)."""

    def hourly_usage(self, license_id: str) -> dict[str, dict[str, int]]:
        """The license's usage counters by hour ("YYYY-MM-DDTHH"), as Redis holds them now."""

    def take_usage_changes(self, license_id: str, *, keep_from_hour: str) -> dict[str, dict[str, int]]:
        """The counters (as hourly_usage) if they changed since the last take, else {};
        counters of hours before `keep_from_hour` (closed) are dropped."""

    def mark_usage_changed(self, license_id: str) -> None: ...

    def restore_usage(self, license_id: str, hours: dict[str, dict[str, int]]) -> None:
        """Raise the counters to their durable values after a loss."""


class SweepLock(Protocol):
    token: str | None

    def acquire(self, ttl_ms: int) -> bool: ...

    def check(self) -> None:
        """Raise SweepLockLost unless this sweep still holds the lock."""

    def forfeit(self) -> None: ...

    def release(self) -> None: ...


class SweepLedger(Protocol):
    """The sweep's side of the seat table."""

    shards: int

    def lock(self) -> SweepLock: ...

    def unrecovered_run(self) -> str | None:
        """The seat store's current run id if it may have lost data since the last full
        recovery walk, else None."""

    def mark_recovered(self, run_id: str) -> bool: ...

    def recovery_cursor(self, run_id: str) -> str: ...

    def audit_cursor(self) -> str: ...

    def save_audit_cursor(self, after: str) -> None: ...

    def save_recovery_cursor(self, run_id: str, after: str) -> None: ...

    def take_revivals(self) -> int: ...

    def indexed_licenses(self, shard: int) -> list[str]: ...

    def unindex_if_idle(self, license_id: str) -> bool: ...

    def sweep_batch(self, license_id: str, *, now_ms: int, batch: int, settle_until_ms: int,
                    verify_before_ms: int) -> SweepBatch: ...

    def mark_verified(self, license_id: str, session_ids: list[str]) -> None: ...


class DurableRecord(Protocol):
    """Tenants, licenses, the key index, sessions and the audit log, durably."""

    def create_tenant(self, tenant: Tenant, event: AuditEvent) -> None: ...

    def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    def list_tenants(self, *, after: str = "", limit: int = 100) -> list[Tenant]: ...

    def create_license(self, license: License, event: AuditEvent) -> None: ...

    def get_license(self, license_id: str) -> License | None: ...

    def license_id_for_key(self, key_hash: str) -> str | None: ...

    def update_license(self, license_id: str, change: Callable[[License], tuple[License, AuditEvent]]) -> License:
        """Apply `change` (stored license -> changed license and its audit event) as one
        atomic read-modify-write; `change` may run more than once, so no side effects."""

    def revoke_license(self, license: License, event: AuditEvent) -> bool:
        """Revoke (revoked_ms, updated_ms from `license`) and drop its key, atomically with
        the read; False, writing nothing, if it was revoked already."""

    def list_licenses(self, *, tenant_id: str | None, after: str = "", limit: int = 100) -> list[License]: ...

    def list_events(self, *, tenant_id: str, license_id: str | None = None, kind: str | None = None,
                    actor: str | None = None, since_ms: int | None = None, until_ms: int | None = None,
                    after: str | None = None, limit: int = 100) -> list[AuditEvent]:
        """A tenant's events, newest first, filtered; InvalidRequest for a cursor not of it."""

    def list_all_events(self, *, since_ms: int | None = None, until_ms: int | None = None, after: str | None = None,
                        limit: int = 100) -> list[AuditEvent]: ...

    def record_grant(self, session: SessionRecord, event: AuditEvent, *more: AuditEvent) -> None: ...

    def record_ends(self, ends: list[tuple[SessionEnd, str, str, AuditEvent]]) -> int: ...

    def record_borrow(self, session_id: str, borrowed_until_ms: int, event: AuditEvent) -> None: ...

    def record_event(self, event: AuditEvent) -> None: ...

    def get_session(self, session_id: str) -> SessionRecord | None: ...

    def sessions(self, session_ids: list[str]) -> dict[str, SessionRecord]: ...

    def active_sessions(self, license_id: str) -> list[SessionRecord]: ...

    def active_sessions_page(self, *, after: str = "", limit: int = 500) -> list[SessionRecord]: ...

    def create_webhook(self, endpoint: WebhookEndpoint, event: AuditEvent) -> None: ...

    def get_webhook(self, webhook_id: str) -> WebhookEndpoint | None: ...

    def list_webhooks(self, *, tenant_id: str | None, after: str = "", limit: int = 100) -> list[WebhookEndpoint]:
        ...

    def update_webhook(self, webhook_id: str,
                       change: Callable[[WebhookEndpoint], tuple[WebhookEndpoint, AuditEvent]]) -> WebhookEndpoint:
        """Apply `change` atomically (it may run more than once); NotFound if there is none."""

    def delete_webhook(self, webhook_id: str, event: AuditEvent) -> None: ...

    def raise_finding(self, finding: Finding, *, tenant_id: str, license_id: str, now_ms: int) -> Raised:
        """Raise, update or leave the finding's flag (with anomaly.detected when raised), atomically."""

    def get_flag(self, flag_id_: str) -> Flag | None: ...

    def list_flags(self, *, tenant_id: str | None, license_id: str | None, state: str | None, after: str = "",
                   limit: int = 100) -> list[Flag]: ...

    def update_flag(self, flag_id_: str, change: Callable[[Flag], tuple[Flag, AuditEvent]]) -> Flag:
        """Apply `change` atomically; NotFound if there is none."""

    def licenses_expiring(self, *, since_ms: int, until_ms: int) -> list[License]:
        """Licenses whose expiry lies in [since, until]."""

    def record_notice(self, event: AuditEvent) -> bool:
        """Record an event once only (a deterministic id): False if it is recorded already."""

    def pending_notifications(self, *, limit: int) -> list[tuple[AuditEvent, str]]:
        """Recorded notifications not yet published, oldest first, with their type."""

    def mark_published(self, event_ids: list[str], published_ms: int) -> int: ...

    def sessions_overlapping(self, start_ms: int, *, license_id: str | None = None) -> list[SessionRecord]:
        """Sessions ended at or after `start_ms`, and every active one (of one license, or all)."""

    def held_seats(self, *, now_ms: int, license_id: str | None = None, limit: int = 10_000) -> list[SessionRecord]:
        """Ended borrows whose seats still count (of one license, or all)."""

    def create_machine_key(self, key: MachineKey, event: AuditEvent) -> None: ...

    def get_machine_key(self, key_id: str) -> MachineKey | None: ...

    def list_machine_keys(self, *, tenant_id: str | None, after: str = "", limit: int = 100) -> list[MachineKey]:
        """Machine keys in id order (every tenant's when tenant_id is None), `limit` after the id `after`."""

    def revoke_machine_key(self, key_id: str, revoked_ms: int, event: AuditEvent) -> bool:
        """Mark the key revoked, atomically with the read; False, writing nothing, if it was
        already. NotFound if there is no such key."""

    def record_machine_key_use(self, key_id: str, used_ms: int) -> None:
        """Note when the key was last used (callers do so at most once a minute per key)."""


class UsageRecord(Protocol):
    """The usage history (shared/store/usage_store.py)."""

    def closed_through(self) -> str | None: ...

    def set_closed_through(self, hour: str) -> None: ...

    def days(self, doc_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...

    def write_days(self, docs: dict[str, dict[str, Any]], *, hour: str) -> int: ...

    def closing_after(self, hour: str) -> str: ...

    def save_closing(self, hour: str, after: str) -> None: ...

    def license_days(self, license_id: str, from_day: str, to_day: str) -> list[dict[str, Any]]: ...

    def tenant_days(self, tenant_id: str | None, from_day: str, to_day: str) -> list[dict[str, Any]]: ...

    def write_checkpoint(self, hour: str, counters: dict[str, dict[str, int]]) -> int: ...

    def checkpoint(self, hour: str) -> dict[str, dict[str, int]]: ...

    def license_checkpoints(self, license_id: str) -> dict[str, dict[str, int]]: ...

    def drop_checkpoint(self, hour: str) -> int: ...

    def days_with_hours_before(self, day: str, *, limit: int) -> list[dict[str, Any]]: ...

    def drop_hours(self, doc_ids: list[str]) -> int: ...


class WebhookSecrets(Protocol):
    """Webhook endpoints' signing secrets in Secret Manager, by endpoint id (shared/webhook_secrets.py)."""

    def create(self, suffix: str, value: str) -> str:
        """A new secret holding `value`: its first version's name."""

    def add(self, suffix: str, value: str) -> str:
        """A new version: its name."""

    def delete(self, suffix: str) -> None: ...


class SecretText(Protocol):
    def text(self, secret: str) -> str:
        """A secret version's payload (shared/google_secrets.py SecretReader)."""


class WebhookPost(Protocol):
    def post(self, url: str, address: str, body: bytes, headers: dict[str, str]) -> Any:
        """POST to `url`, connected to `address` only: a Sent (status | None, error, latency_ms)."""


class SignalNotes(Protocol):
    """Conflict detection's notes, on the hot path (shared/seats/signals.py SignalLedger)."""

    def note(self, license_id: str, *, now_ms: int, keep_ms: int, pair: tuple[str, str] | None = None,
             address: tuple[str, str, str] | None = None, grant: tuple[str, str] | None = None) -> None:
        """Never raises for Redis being away: a note is a statistic."""


class Mailer(Protocol):
    def send(self, to: str, mail: NotificationMail, *, at_ms: int) -> MailSent:
        """Send `mail` to the one address `to` through the relay, dated `at_ms`; how it went
        (never raises for a refusal, a timeout or a lost connection: the MailSent says)."""


class SignalReader(Protocol):
    """The sweep's side of conflict detection's notes (shared/seats/signals.py SignalLedger)."""

    def take_pass(self, *, interval_ms: int) -> bool: ...

    def noted_since(self, since_ms: int, *, limit: int) -> list[tuple[str, int]]: ...

    def evaluated_through(self) -> int: ...

    def set_evaluated_through(self, ms: int, *, now_ms: int) -> None: ...

    def signals(self, license_id: str, *, now_ms: int, keep_ms: int) -> Signals: ...


class NotificationInbox(Protocol):
    def pull(self, *, max_messages: int) -> list[tuple[str, dict[str, Any] | None]]:
        """(ack id, message body or None if unreadable) of the notifications waiting."""

    def ack(self, ack_ids: list[str]) -> None: ...

    def nack(self, ack_ids: list[str]) -> None:
        """Hand back for redelivery now; after the subscription's attempts, dead-lettered."""


class DeliveryRecord(Protocol):
    """Webhook deliveries (shared/store/delivery_store.py)."""

    def create(self, *, tenant_id: str, endpoint_id: str, event_id: str, type_: str, message: str,
               now_ms: int) -> Delivery | None:
        """The new due delivery; None if it exists already."""

    def due(self, *, now_ms: int, limit: int) -> list[Delivery]: ...

    def record(self, delivery: Delivery, *, state: str, attempt: dict[str, Any] | None, next_ms: int | None,
               now_ms: int) -> None: ...

    def recent(self, endpoint_id: str, *, limit: int) -> list[Delivery]: ...


class NotificationPublisher(Protocol):
    def publish(self, messages: Sequence[dict[str, Any]]) -> None:
        """Publish every message (shared/domain/notifications.py message()), or raise."""


class LeaseSigner(Protocol):
    def prepare(self, now_s: int) -> None:
        """Have a signing certificate ready, so signing right after needs no KMS call."""

    def sign_lease(self, claims: dict[str, Any]) -> str: ...

    def sign_statement(self, claims: dict[str, Any]) -> str:
        """A signed usage statement over `claims` (which must hold `iat`)."""


class LeaseProof(Protocol):
    def proves_lease(self, token: str, *, session_id: str, now_s: int) -> bool:
        """True if `token` is this service's lease token for `session_id`, still valid at `now_s`."""


class RateLimiter(Protocol):
    def charge(self, charges: list[tuple[str, str, Limit]]) -> None:
        """Charge one request to each (scope, id, limit); raises RateLimited."""
