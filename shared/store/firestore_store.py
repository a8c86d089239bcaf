"""Firestore repositories for the durable record.

Collections, all top level (the sweep walks the active sessions of every license and
the owner lists licenses of every tenant: plain queries over one collection each):
    tenants/{tenant_id}              name, created_at
    licenses/{license_id}            tenant_id, seats, tier, features, expiry, key_hash ...
    license_keys/{sha256(key)}       tenant_id, license_id   (the key index)
    sessions/{session_id}            license_id, tenant_id, uid, hardware, status, end ...
    machine_keys/{key_id}            tenant_id, name, licenses, mode, sha256(key), created,
                                     last used, revoked   (the key carries its id: no index)
    webhooks/{webhook_id}            tenant_id, url, events, enabled, secret versions (names in
                                     Secret Manager: never a secret), created, disabled reason
    events/{event_id}                the audit log

Seat atomicity is Redis's job. Each write here is one atomic commit:
- where nothing written depends on a read: `create()` of fresh ids, idempotent `set()`
  under deterministic ids, batches of a few documents (a session and its audit event);
- where it does, a transaction: an administrator's change to a license is a
  read-modify-write (two concurrent changes both hold), and a revocation must not be
  undone by a change that read the license before it.
Listings page in document-id order from a cursor (`start_after` the last id seen), so
no document needs a copy of its own id to page by (older ones may have one: ignored).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from google.api_core import exceptions as google_exceptions
from google.api_core import retry as google_retry
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from shared.domain import AuditEvent, License, MachineKey, SeatPolicy, SessionEnd, SessionRecord, Tenant
from shared.domain.anomalies import AnomalyRules, Finding, Flag, Raised, flag_id, raise_finding
from shared.domain.notifications import notification_type
from shared.domain.times import datetime_to_ms, ms_to_datetime
from shared.domain.webhook_endpoints import SecretVersion, WebhookEndpoint
from shared.errors import AlreadyExists, BackendUnavailable, InvalidRequest, NotFound

T = TypeVar("T")
_ENDS_PER_BATCH = 250  # two writes each (session + event): 500, Firestore's batch limit
_TRANSACTION_ROUNDS = 3  # of the client's 5 attempts each (see _transact)
TRANSIENT_ERRORS = (
    google_exceptions.ServiceUnavailable,
    google_exceptions.DeadlineExceeded,
    google_exceptions.InternalServerError,
    google_exceptions.Aborted,
    google_exceptions.Unknown,
    google_exceptions.RetryError,
)


def _ms(value: datetime | None) -> int | None:
    return None if value is None else datetime_to_ms(value)


def _fields(snap: firestore.DocumentSnapshot) -> dict[str, Any]:
    """The fields of a snapshot of a document that exists."""
    data = snap.to_dict()
    assert data is not None, f"{snap.reference.path} does not exist"
    return data


def _between(query: firestore.CollectionReference | firestore.Query, since_ms: int | None,
             until_ms: int | None) -> firestore.CollectionReference | firestore.Query:
    """Events at or after `since_ms` and before `until_ms` (a range on `at`, the field they
    are ordered by: no index of its own)."""
    if since_ms is not None:
        query = query.where(filter=firestore.FieldFilter("at", ">=", ms_to_datetime(since_ms)))
    if until_ms is not None:
        query = query.where(filter=firestore.FieldFilter("at", "<", ms_to_datetime(until_ms)))
    return query


class FirestoreStore:
    """All durable reads and writes, each one call with a bounded time."""

    def __init__(self, client: firestore.Client, *, timeout_s: float = 10.0):
        self._db = client
        self._timeout_s = timeout_s
        # Retry transient faults briefly, but stay inside the caller's patience.
        self._retry = google_retry.Retry(
            predicate=google_retry.if_exception_type(
                google_exceptions.ServiceUnavailable, google_exceptions.DeadlineExceeded
            ),
            initial=0.1,
            maximum=1.0,
            timeout=timeout_s,
        )

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TRANSIENT_ERRORS as exc:
            raise BackendUnavailable("firestore") from exc

    def _read_modify_write(self, collection: str, doc_id: str, what: str,
                           read: Callable[[str, dict[str, Any]], T], write: Callable[[T], dict[str, Any]],
                           change: Callable[[T], tuple[T, AuditEvent]]) -> T:
        """`change` applied to a document as stored, with its audit event, in one transaction
        (it may run more than once: it must have no side effects). NotFound if there is none."""
        ref = self._db.collection(collection).document(doc_id)

        def body(transaction: firestore.Transaction) -> T:
            snap = ref.get(transaction=transaction, **self._opts())
            if not snap.exists:
                raise NotFound(f"no {what} {doc_id}")
            updated, event = change(read(snap.id, _fields(snap)))
            transaction.set(ref, write(updated))
            self._add_event(transaction, event)
            return updated

        return self._transact(body)

    def _opts(self) -> dict[str, Any]:
        return {"timeout": self._timeout_s, "retry": self._retry}

    def _transact(self, body: Callable[[firestore.Transaction], T]) -> T:
        """Run `body` in a transaction: its reads see one version, its writes commit only if
        nothing it read has changed meanwhile. On contention the client runs `body` again
        (up to 5 attempts, each with fresh reads, at once: it counts on the server keeping
        a retried transaction's place in line). Two transactions that read the same
        document and then both write it wait on each other's locks until one times out;
        on a busy 2-core CI machine Google's emulator was seen to abort such a pair five
        times running ("Transaction lock timeout"). They are pulled apart here: up to
        three such rounds, after a random pause that grows. A transaction that never gets
        through is BackendUnavailable (retry later), like any other transient fault. Its
        reads are bounded by timeout_s; begin and commit by the client's own deadline
        (60 s), which the library does not let a caller set."""
        for round_ in range(_TRANSACTION_ROUNDS):
            try:
                return self._call(firestore.transactional(body), self._db.transaction())
            except ValueError as exc:  # the client's "failed after N attempts", from the last Aborted
                if not isinstance(exc.__cause__, google_exceptions.Aborted):
                    raise
                if round_ == _TRANSACTION_ROUNDS - 1:
                    raise BackendUnavailable("firestore") from exc
                time.sleep(random.uniform(0.05, 0.25) * (round_ + 1))
        raise AssertionError("unreachable")

    def _page(self, query: firestore.Query | firestore.CollectionReference, *, after: str,
              limit: int) -> list[firestore.DocumentSnapshot]:
        """`limit` documents of `query` in document-id order, from just after the id `after`
        ("": from the first)."""
        by_id = FieldPath.document_id()
        page = query.order_by(by_id).limit(limit)
        if after:
            page = page.start_after({by_id: after})
        return self._call(lambda: list(page.stream(timeout=self._timeout_s, retry=self._retry)))

    # -- health ----------------------------------------------------------------
    def ping(self) -> None:
        """One cheap read, to prove Firestore answers."""
        self._call(self._db.collection("tenants").document("_ping").get, **self._opts())

    # -- tenants ---------------------------------------------------------------
    def create_tenant(self, tenant: Tenant, event: AuditEvent) -> None:
        """Raises AlreadyExists if the id is taken (create() is atomic: no check-then-write race)."""
        batch = self._db.batch()
        batch.create(
            self._db.collection("tenants").document(tenant.id),
            {"name": tenant.name, "created_at": ms_to_datetime(tenant.created_ms)},
        )
        self._add_event(batch, event)
        try:
            self._call(batch.commit, **self._opts())
        except google_exceptions.AlreadyExists as exc:
            raise AlreadyExists(f"tenant {tenant.id} already exists", field="id") from exc

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        snap = self._call(self._db.collection("tenants").document(tenant_id).get, **self._opts())
        if not snap.exists:
            return None
        data = snap.to_dict()
        return Tenant(snap.id, data["name"], datetime_to_ms(data["created_at"]))

    # -- licenses ----------------------------------------------------------------
    def create_license(self, license: License, event: AuditEvent) -> None:
        """The license and its key-index entry, atomically (with the audit event)."""
        batch = self._db.batch()
        batch.create(self._db.collection("licenses").document(license.id), self._license_doc(license))
        batch.create(
            self._db.collection("license_keys").document(license.key_hash),
            {"tenant_id": license.tenant_id, "license_id": license.id},
        )
        self._add_event(batch, event)
        try:
            self._call(batch.commit, **self._opts())
        except google_exceptions.AlreadyExists as exc:  # an id or key collision: never in practice
            raise AlreadyExists("that license id or key exists already; retry") from exc

    def get_license(self, license_id: str) -> License | None:
        snap = self._call(self._db.collection("licenses").document(license_id).get, **self._opts())
        return self._license_from(snap.id, snap.to_dict()) if snap.exists else None

    def license_id_for_key(self, key_hash: str) -> str | None:
        snap = self._call(self._db.collection("license_keys").document(key_hash).get, **self._opts())
        return snap.to_dict()["license_id"] if snap.exists else None

    def update_license(self, license_id: str, change: Callable[[License], tuple[License, AuditEvent]]) -> License:
        """Change a license and record the change: a read-modify-write in one transaction.

        Args:
            change: gets the license as stored, returns it changed and the audit event
                to write; may raise (then nothing is written). It may run more than once,
                each time with the latest copy (the transaction is retried when a
                concurrent one changed the license), so it must have no side effects.
        Returns:
            The license as written.
        Raises:
            NotFound: there is no license `license_id`.
        """
        return self._read_modify_write("licenses", license_id, "license", self._license_from, self._license_doc,
                                       change)

    def revoke_license(self, license: License, event: AuditEvent) -> bool:
        """Mark the license revoked and drop its key from the index: the key opens nothing now.

        One transaction with the read: a change that read the license before cannot undo
        the revocation. Only `revoked_ms` and `updated_ms` are taken from `license`.
        Returns False, writing nothing, if the license was revoked already.
        Raises NotFound if there is no such license.
        """
        ref = self._db.collection("licenses").document(license.id)

        def revoke(transaction: firestore.Transaction) -> bool:
            snap = ref.get(transaction=transaction, **self._opts())
            if not snap.exists:
                raise NotFound(f"no license {license.id}")
            stored = _fields(snap)
            if stored.get("revoked_at") is not None:
                return False
            transaction.update(ref, {"revoked_at": ms_to_datetime(license.revoked_ms),
                                     "updated_at": ms_to_datetime(license.updated_ms)})
            transaction.delete(self._db.collection("license_keys").document(stored["key_hash"]))
            self._add_event(transaction, event)
            return True

        return self._transact(revoke)

    def list_tenants(self, *, after: str = "", limit: int = 100) -> list[Tenant]:
        """Tenants in id order, `limit` after the id `after`."""
        snaps = self._page(self._db.collection("tenants"), after=after, limit=limit)
        return [Tenant(s.id, d["name"], datetime_to_ms(d["created_at"])) for s, d in ((s, _fields(s)) for s in snaps)]

    def list_licenses(self, *, tenant_id: str | None, after: str = "", limit: int = 100) -> list[License]:
        """Licenses in id order (all tenants when tenant_id is None), `limit` after the id `after`."""
        query: firestore.CollectionReference | firestore.Query = self._db.collection("licenses")
        if tenant_id is not None:
            query = query.where(filter=firestore.FieldFilter("tenant_id", "==", tenant_id))
        return [self._license_from(s.id, _fields(s)) for s in self._page(query, after=after, limit=limit)]

    def licenses_expiring(self, *, since_ms: int, until_ms: int) -> list[License]:
        """Licenses whose expiry lies in [since, until] (revoked ones included: the caller decides)."""
        query = (self._db.collection("licenses")
                 .where(filter=firestore.FieldFilter("expires_at", ">=", ms_to_datetime(since_ms)))
                 .where(filter=firestore.FieldFilter("expires_at", "<=", ms_to_datetime(until_ms))))
        snaps = self._call(lambda: list(query.stream(timeout=self._timeout_s, retry=self._retry)))
        return [self._license_from(snap.id, _fields(snap)) for snap in snaps]

    def list_events(self, *, tenant_id: str, license_id: str | None = None, kind: str | None = None,
                    actor: str | None = None, since_ms: int | None = None, until_ms: int | None = None,
                    after: str | None = None, limit: int = 100) -> list[AuditEvent]:
        """A tenant's events, newest first: optionally of one license, type and actor, at or
        after `since_ms` and before `until_ms`, after the event `after` (the page before's last)."""
        query = self._db.collection("events").where(filter=firestore.FieldFilter("tenant_id", "==", tenant_id))
        if license_id is not None:
            query = query.where(filter=firestore.FieldFilter("license_id", "==", license_id))
        if kind is not None:
            query = query.where(filter=firestore.FieldFilter("type", "==", kind))
        if actor is not None:
            query = query.where(filter=firestore.FieldFilter("actor", "==", actor))
        query = _between(query, since_ms, until_ms).order_by("at", direction=firestore.Query.DESCENDING)
        return self._event_page(query, tenant_id, after, limit)

    def list_all_events(self, *, since_ms: int | None = None, until_ms: int | None = None, after: str | None = None,
                        limit: int = 100) -> list[AuditEvent]:
        """Every tenant's events, newest first (the owner's audit log)."""
        query = _between(self._db.collection("events"), since_ms, until_ms)
        return self._event_page(query.order_by("at", direction=firestore.Query.DESCENDING), None, after, limit)

    def _event_page(self, query: firestore.Query, tenant_id: str | None, after: str | None,
                    limit: int) -> list[AuditEvent]:
        if after is not None:
            # (at, document id) orders the page: ties on `at` are split by id, never lost
            cursor = self._call(self._db.collection("events").document(after).get, **self._opts())
            if not cursor.exists or (tenant_id is not None and _fields(cursor).get("tenant_id") != tenant_id):
                raise InvalidRequest("after: not an event of this listing", field="after")
            query = query.start_after(cursor)
        query = query.limit(limit)
        snaps = self._call(lambda: list(query.stream(timeout=self._timeout_s, retry=self._retry)))
        return [self._event_from(s.id, _fields(s)) for s in snaps]

    @staticmethod
    def _event_from(event_id: str, d: dict[str, Any]) -> AuditEvent:
        return AuditEvent(id=event_id, tenant_id=d["tenant_id"], license_id=d.get("license_id"), type=d["type"],
                          actor=d["actor"], at_ms=datetime_to_ms(d["at"]), session_id=d.get("session_id"),
                          details=d.get("details") or {})

    @staticmethod
    def _license_doc(lic: License) -> dict[str, Any]:
        return {
            "tenant_id": lic.tenant_id,
            "max_seats": lic.max_seats,
            "tier": lic.tier,
            "features": list(lic.features),
            "expires_at": ms_to_datetime(lic.expires_ms),
            "suspended": lic.suspended,
            "suspended_by": lic.suspended_by,
            "allowed_domains": list(lic.allowed_domains),
            "lease_ttl_s": lic.lease_ttl_s,
            "heartbeat_interval_s": lic.heartbeat_interval_s,
            "revive_window_s": lic.revive_window_s,
            "max_sessions_per_user": lic.max_sessions_per_user,
            "offline_grace_s": lic.offline_grace_s,
            "max_borrow_s": lic.max_borrow_s,
            "policy": lic.policy.as_json(),
            "ci_seats": lic.ci_seats,
            "support_contact": lic.support_contact,
            "anomaly_rules": lic.anomaly_rules.stored(),
            "revoked_at": ms_to_datetime(lic.revoked_ms),
            "key_hash": lic.key_hash,
            "created_at": ms_to_datetime(lic.created_ms),
            "updated_at": ms_to_datetime(lic.updated_ms),
        }

    @staticmethod
    def _license_from(license_id: str, data: dict[str, Any]) -> License:
        return License(
            id=license_id,
            tenant_id=data["tenant_id"],
            max_seats=int(data["max_seats"]),
            tier=data["tier"],
            features=tuple(data.get("features") or ()),
            expires_ms=_ms(data.get("expires_at")),
            suspended=bool(data.get("suspended")),
            suspended_by=data.get("suspended_by"),
            allowed_domains=tuple(data.get("allowed_domains") or ()),
            lease_ttl_s=int(data["lease_ttl_s"]),
            heartbeat_interval_s=int(data["heartbeat_interval_s"]),
            revive_window_s=int(data.get("revive_window_s") or 0),
            max_sessions_per_user=int(data.get("max_sessions_per_user") or 0),
            offline_grace_s=int(data.get("offline_grace_s") or 0),
            max_borrow_s=int(data.get("max_borrow_s") or 0),
            policy=SeatPolicy.from_json(data.get("policy")),
            ci_seats=int(data.get("ci_seats") or 0),
            support_contact=data.get("support_contact") or None,
            anomaly_rules=AnomalyRules.from_json(data.get("anomaly_rules")),
            revoked_ms=_ms(data.get("revoked_at")),
            key_hash=data["key_hash"],
            created_ms=datetime_to_ms(data["created_at"]),
            updated_ms=datetime_to_ms(data["updated_at"]),
        )

    # -- sessions ----------------------------------------------------------------
    def record_grant(self, session: SessionRecord, event: AuditEvent, *more: AuditEvent) -> None:
        """The session document and its audit events, in one atomic commit."""
        batch = self._db.batch()
        batch.create(
            self._db.collection("sessions").document(session.id),
            {
                "license_id": session.license_id,
                "tenant_id": session.tenant_id,
                "uid": session.uid,
                "hardware_id": session.hardware_id,
                "client": session.client,
                "acquired_at": ms_to_datetime(session.acquired_ms),
                "lease_expires_at": ms_to_datetime(session.lease_expires_ms),
                "status": "active",
                # its seat class, for a rebuild after a Redis loss (shared/domain/policies.py)
                "groups": list(session.groups),
                "reserved_for": session.reserved_for,
                "overage": session.overage,
                "ci": session.ci,
            },
        )
        for each in (event, *more):
            self._add_event(batch, each)
        self._call(batch.commit, **self._opts())

    def record_ends(self, ends: list[tuple[SessionEnd, str, str, AuditEvent]]) -> int:
        """Close sessions with their audit events, in atomic batches of at most 500 writes.

        `set(merge=True)` rather than `update()`: if a process died between the Redis
        grant and the session's creation, the end still leaves a whole record. Returns
        the number of Firestore document writes.
        """
        writes = 0
        for start in range(0, len(ends), _ENDS_PER_BATCH):
            batch = self._db.batch()
            for end, license_id, tenant_id, event in ends[start : start + _ENDS_PER_BATCH]:
                batch.set(
                    self._db.collection("sessions").document(end.session_id),
                    {
                        "license_id": license_id,
                        "tenant_id": tenant_id,
                        "uid": end.uid,
                        "hardware_id": end.hardware_id,
                        "acquired_at": ms_to_datetime(end.acquired_ms),
                        "status": "ended",
                        "ended_at": ms_to_datetime(end.ended_ms),
                        "end_reason": end.state,
                        "last_heartbeat_at": ms_to_datetime(end.last_heartbeat_ms),
                        # an ended borrow whose seat still counts (its token is valid offline)
                        **({"seat_held_until": ms_to_datetime(end.held_until_ms)} if end.held_until_ms else {}),
                    },
                    merge=True,
                )
                self._add_event(batch, event)
                writes += 2
            self._call(batch.commit, **self._opts())
        return writes

    def record_borrow(self, session_id: str, borrowed_until_ms: int, event: AuditEvent) -> None:
        """A borrow, durably: the session's borrow end (recovery after a Redis loss keeps
        the seat that long) and its audit event, in one commit."""
        batch = self._db.batch()
        batch.set(self._db.collection("sessions").document(session_id),
                  {"borrowed_until": ms_to_datetime(borrowed_until_ms)}, merge=True)
        self._add_event(batch, event)
        self._call(batch.commit, **self._opts())

    def held_seats(self, *, now_ms: int, license_id: str | None = None, limit: int = 10_000) -> list[SessionRecord]:
        """Ended borrows whose seats still count (seat_held_until in the future)."""
        query: firestore.CollectionReference | firestore.Query = self._db.collection("sessions")
        if license_id is not None:
            query = query.where(filter=firestore.FieldFilter("license_id", "==", license_id))
        query = query.where(filter=firestore.FieldFilter("seat_held_until", ">", ms_to_datetime(now_ms))).limit(limit)
        snaps = self._call(lambda: list(query.stream(timeout=self._timeout_s, retry=self._retry)))
        return [self._session_from(snap.id, snap.to_dict()) for snap in snaps]

    def record_event(self, event: AuditEvent) -> None:
        batch = self._db.batch()
        self._add_event(batch, event)
        self._call(batch.commit, **self._opts())

    def get_session(self, session_id: str) -> SessionRecord | None:
        snap = self._call(self._db.collection("sessions").document(session_id).get, **self._opts())
        return self._session_from(snap.id, snap.to_dict()) if snap.exists else None

    def active_sessions(self, license_id: str) -> list[SessionRecord]:
        """Sessions Firestore believes are active for a license (for reconciliation)."""
        query = (
            self._db.collection("sessions")
            .where(filter=firestore.FieldFilter("license_id", "==", license_id))
            .where(filter=firestore.FieldFilter("status", "==", "active"))
        )
        snaps = self._call(lambda: list(query.stream(timeout=self._timeout_s, retry=self._retry)))
        return [self._session_from(snap.id, snap.to_dict()) for snap in snaps]

    def sessions_overlapping(self, start_ms: int, *, license_id: str | None = None) -> list[SessionRecord]:
        """Sessions that may have held a seat at or after `start_ms` (of one license, or of
        every license): those ended since, and every active one. The caller clips them."""
        ended: firestore.CollectionReference | firestore.Query = self._db.collection("sessions")
        if license_id is not None:
            ended = ended.where(filter=firestore.FieldFilter("license_id", "==", license_id))
        ended = ended.where(filter=firestore.FieldFilter("ended_at", ">=", ms_to_datetime(start_ms)))
        snaps = self._call(lambda: list(ended.stream(timeout=self._timeout_s, retry=self._retry)))
        found = {snap.id: self._session_from(snap.id, _fields(snap)) for snap in snaps}
        if license_id is not None:
            active = self.active_sessions(license_id)
        else:
            active, after = [], ""
            while page := self.active_sessions_page(after=after, limit=1000):
                active += page
                after = page[-1].id
                if len(page) < 1000:
                    break
        found.update({s.id: s for s in active})
        return list(found.values())

    def sessions(self, session_ids: list[str]) -> dict[str, SessionRecord]:
        """The durable records of these sessions that exist (one batched read)."""
        refs = [self._db.collection("sessions").document(sid) for sid in session_ids]
        snaps = self._call(lambda: list(self._db.get_all(refs, timeout=self._timeout_s, retry=self._retry)))
        return {snap.id: self._session_from(snap.id, snap.to_dict()) for snap in snaps if snap.exists}

    def active_sessions_page(self, *, after: str = "", limit: int = 500) -> list[SessionRecord]:
        """Active sessions of every license, in session-id order, `limit` after the id `after`."""
        query = self._db.collection("sessions").where(filter=firestore.FieldFilter("status", "==", "active"))
        return [self._session_from(snap.id, _fields(snap)) for snap in self._page(query, after=after, limit=limit)]

    @staticmethod
    def _session_from(session_id: str, d: dict[str, Any]) -> SessionRecord:
        return SessionRecord(
            id=session_id,
            license_id=d["license_id"],
            tenant_id=d["tenant_id"],
            uid=d["uid"],
            hardware_id=d["hardware_id"],
            acquired_ms=datetime_to_ms(d["acquired_at"]),
            lease_expires_ms=_ms(d.get("lease_expires_at")),
            client=d.get("client") or {},
            status=d["status"],
            ended_ms=_ms(d.get("ended_at")),
            end_reason=d.get("end_reason"),
            last_heartbeat_ms=_ms(d.get("last_heartbeat_at")),
            borrowed_until_ms=_ms(d.get("borrowed_until")),
            seat_held_until_ms=_ms(d.get("seat_held_until")),
            groups=tuple(d.get("groups") or ()),
            reserved_for=d.get("reserved_for"),
            overage=bool(d.get("overage")),
            ci=bool(d.get("ci")),
        )

    # -- webhook endpoints --------------------------------------------------------------
    def create_webhook(self, endpoint: WebhookEndpoint, event: AuditEvent) -> None:
        batch = self._db.batch()
        batch.create(self._db.collection("webhooks").document(endpoint.id), self._webhook_doc(endpoint))
        self._add_event(batch, event)
        self._call(batch.commit, **self._opts())

    def get_webhook(self, webhook_id: str) -> WebhookEndpoint | None:
        snap = self._call(self._db.collection("webhooks").document(webhook_id).get, **self._opts())
        return self._webhook_from(snap.id, _fields(snap)) if snap.exists else None

    def list_webhooks(self, *, tenant_id: str | None, after: str = "", limit: int = 100) -> list[WebhookEndpoint]:
        """Endpoints in id order (every tenant's when tenant_id is None), `limit` after the id `after`."""
        query: firestore.CollectionReference | firestore.Query = self._db.collection("webhooks")
        if tenant_id is not None:
            query = query.where(filter=firestore.FieldFilter("tenant_id", "==", tenant_id))
        return [self._webhook_from(s.id, _fields(s)) for s in self._page(query, after=after, limit=limit)]

    def update_webhook(self, webhook_id: str,
                       change: Callable[[WebhookEndpoint], tuple[WebhookEndpoint, AuditEvent]]) -> WebhookEndpoint:
        """Apply `change` as one atomic read-modify-write (it may run more than once). NotFound
        if there is no such endpoint."""
        return self._read_modify_write("webhooks", webhook_id, "webhook", self._webhook_from, self._webhook_doc,
                                       change)

    def delete_webhook(self, webhook_id: str, event: AuditEvent) -> None:
        batch = self._db.batch()
        batch.delete(self._db.collection("webhooks").document(webhook_id))
        self._add_event(batch, event)
        self._call(batch.commit, **self._opts())

    @staticmethod
    def _webhook_doc(endpoint: WebhookEndpoint) -> dict[str, Any]:
        return {
            "tenant_id": endpoint.tenant_id, "url": endpoint.url, "events": list(endpoint.events),
            "enabled": endpoint.enabled, "description": endpoint.description,
            "created_at": ms_to_datetime(endpoint.created_ms), "created_by": endpoint.created_by,
            "secret_versions": [{"name": v.name, "signs_until": ms_to_datetime(v.signs_until_ms)}
                                for v in endpoint.secret_versions],
            "disabled_reason": endpoint.disabled_reason,
            "failing_since": ms_to_datetime(endpoint.failing_since_ms),
        }

    @staticmethod
    def _webhook_from(webhook_id: str, d: dict[str, Any]) -> WebhookEndpoint:
        return WebhookEndpoint(
            id=webhook_id, tenant_id=d["tenant_id"], url=d["url"], events=tuple(d.get("events") or ()),
            enabled=bool(d.get("enabled", True)), description=d.get("description") or "",
            created_ms=datetime_to_ms(d["created_at"]), created_by=d.get("created_by") or "",
            secret_versions=tuple(SecretVersion(v["name"], _ms(v.get("signs_until")))
                                  for v in d.get("secret_versions") or ()),
            disabled_reason=d.get("disabled_reason"),
            failing_since_ms=_ms(d.get("failing_since")),
        )

    # -- machine keys ----------------------------------------------------------------
    def create_machine_key(self, key: MachineKey, event: AuditEvent) -> None:
        """The key's document (its hash, never the key) and its audit event, in one commit."""
        batch = self._db.batch()
        batch.create(self._db.collection("machine_keys").document(key.id), {
            "tenant_id": key.tenant_id,
            "name": key.name,
            "licenses": list(key.licenses),
            "mode": key.mode,
            "key_hash": key.key_hash,
            "created_by": key.created_by,
            "created_at": ms_to_datetime(key.created_ms),
            "last_used_at": None,
            "revoked_at": None,
        })
        self._add_event(batch, event)
        try:
            self._call(batch.commit, **self._opts())
        except google_exceptions.AlreadyExists as exc:  # an id collision: never in practice
            raise AlreadyExists("that machine key id exists already; retry") from exc

    def get_machine_key(self, key_id: str) -> MachineKey | None:
        snap = self._call(self._db.collection("machine_keys").document(key_id).get, **self._opts())
        return self._machine_key_from(snap.id, _fields(snap)) if snap.exists else None

    def list_machine_keys(self, *, tenant_id: str | None, after: str = "", limit: int = 100) -> list[MachineKey]:
        query: firestore.CollectionReference | firestore.Query = self._db.collection("machine_keys")
        if tenant_id is not None:
            query = query.where(filter=firestore.FieldFilter("tenant_id", "==", tenant_id))
        return [self._machine_key_from(s.id, _fields(s)) for s in self._page(query, after=after, limit=limit)]

    def revoke_machine_key(self, key_id: str, revoked_ms: int, event: AuditEvent) -> bool:
        ref = self._db.collection("machine_keys").document(key_id)

        def revoke(transaction: firestore.Transaction) -> bool:
            snap = ref.get(transaction=transaction, **self._opts())
            if not snap.exists:
                raise NotFound(f"no machine key {key_id}")
            if _fields(snap).get("revoked_at") is not None:
                return False
            transaction.update(ref, {"revoked_at": ms_to_datetime(revoked_ms)})
            self._add_event(transaction, event)
            return True

        return self._transact(revoke)

    def record_machine_key_use(self, key_id: str, used_ms: int) -> None:
        """`update`, not `set`: a key deleted meanwhile is not brought back as a bare document."""
        try:
            self._call(self._db.collection("machine_keys").document(key_id).update,
                       {"last_used_at": ms_to_datetime(used_ms)}, **self._opts())
        except google_exceptions.NotFound:
            pass

    @staticmethod
    def _machine_key_from(key_id: str, d: dict[str, Any]) -> MachineKey:
        return MachineKey(
            id=key_id, tenant_id=d["tenant_id"], name=d["name"], licenses=tuple(d.get("licenses") or ()),
            mode=d["mode"], key_hash=d["key_hash"], created_by=d["created_by"],
            created_ms=datetime_to_ms(d["created_at"]), last_used_ms=_ms(d.get("last_used_at")),
            revoked_ms=_ms(d.get("revoked_at")),
        )

    # -- conflict flags (shared/domain/anomalies.py) ------------------------------------
    def raise_finding(self, finding: Finding, *, tenant_id: str, license_id: str, now_ms: int) -> Raised:
        """Raise, update or leave the finding's flag, atomically with its anomaly.detected
        event when it is raised (again)."""
        ref = self._db.collection("anomalies").document(flag_id(license_id, finding.rule, finding.subject))

        def read_modify_write(transaction: firestore.Transaction) -> Raised:
            snap = ref.get(transaction=transaction, **self._opts())
            before = self._flag_from(snap.id, _fields(snap)) if snap.exists else None
            raised = raise_finding(before, finding, tenant_id=tenant_id, license_id=license_id, now_ms=now_ms)
            if raised.change != "unchanged":
                transaction.set(ref, self._flag_doc(raised.flag))
            if raised.event_id is not None:
                self._add_event(transaction, AuditEvent(
                    raised.event_id, tenant_id, license_id, "anomaly.detected", "system", now_ms,
                    details=raised.flag.event_details()))
            return raised

        return self._transact(read_modify_write)

    def get_flag(self, flag_id_: str) -> Flag | None:
        snap = self._call(self._db.collection("anomalies").document(flag_id_).get, **self._opts())
        return self._flag_from(snap.id, _fields(snap)) if snap.exists else None

    def list_flags(self, *, tenant_id: str | None, license_id: str | None, state: str | None, after: str = "",
                   limit: int = 100) -> list[Flag]:
        """Flags in id order (a license's by rule), `limit` after the id `after`."""
        query: firestore.CollectionReference | firestore.Query = self._db.collection("anomalies")
        if tenant_id is not None:
            query = query.where(filter=firestore.FieldFilter("tenant_id", "==", tenant_id))
        if license_id is not None:
            query = query.where(filter=firestore.FieldFilter("license_id", "==", license_id))
        if state is not None:
            query = query.where(filter=firestore.FieldFilter("state", "==", state))
        return [self._flag_from(s.id, _fields(s)) for s in self._page(query, after=after, limit=limit)]

    def update_flag(self, flag_id_: str, change: Callable[[Flag], tuple[Flag, AuditEvent]]) -> Flag:
        """Apply `change` as one atomic read-modify-write. NotFound if there is no such flag."""
        return self._read_modify_write("anomalies", flag_id_, "flag", self._flag_from, self._flag_doc, change)

    @staticmethod
    def _flag_doc(flag: Flag) -> dict[str, Any]:
        return {
            "tenant_id": flag.tenant_id, "license_id": flag.license_id, "rule": flag.rule, "subject": flag.subject,
            "uid": flag.uid, "count": flag.observed, "threshold": flag.threshold, "window_s": flag.window_s,
            "first_seen_at": ms_to_datetime(flag.first_seen_ms), "last_seen_at": ms_to_datetime(flag.last_seen_ms),
            "examples": list(flag.examples), "state": flag.state, "detected_at": ms_to_datetime(flag.detected_ms),
            "updated_at": ms_to_datetime(flag.updated_ms), "times_raised": flag.times_raised,
            "acknowledged_at": ms_to_datetime(flag.acknowledged_ms), "acknowledged_by": flag.acknowledged_by,
            "acknowledged_count": flag.acknowledged_count, "note": flag.note,
        }

    @staticmethod
    def _flag_from(flag_id_: str, d: dict[str, Any]) -> Flag:
        return Flag(
            id=flag_id_, tenant_id=d["tenant_id"], license_id=d["license_id"], rule=d["rule"], subject=d["subject"],
            uid=d.get("uid"), observed=int(d["count"]), threshold=int(d["threshold"]), window_s=int(d["window_s"]),
            first_seen_ms=datetime_to_ms(d["first_seen_at"]), last_seen_ms=datetime_to_ms(d["last_seen_at"]),
            examples=tuple(d.get("examples") or ()), state=d["state"], detected_ms=datetime_to_ms(d["detected_at"]),
            updated_ms=datetime_to_ms(d["updated_at"]), times_raised=int(d.get("times_raised") or 1),
            acknowledged_ms=_ms(d.get("acknowledged_at")), acknowledged_by=d.get("acknowledged_by"),
            acknowledged_count=d.get("acknowledged_count"), note=d.get("note"),
        )

    # -- audit events --------------------------------------------------------------
    @staticmethod
    def _event_doc(event: AuditEvent) -> dict[str, Any]:
        doc = {
            "tenant_id": event.tenant_id,
            "license_id": event.license_id,
            "session_id": event.session_id,
            "type": event.type,
            "actor": event.actor,
            "at": ms_to_datetime(event.at_ms),
            "details": event.details,
        }
        kind = notification_type(event)
        if kind is not None:  # for the sweep to publish (shared/licensing/notification_outbox.py)
            doc.update(notify=kind, notify_state="pending")
        return doc

    def _add_event(self, batch: firestore.WriteBatch | firestore.Transaction, event: AuditEvent) -> None:
        batch.set(self._db.collection("events").document(event.id), self._event_doc(event))

    def record_notice(self, event: AuditEvent) -> bool:
        """Record an event that may be noticed again (a license expiring, seats exhausted this
        hour) once only: False, writing nothing, if its id is recorded already."""
        try:
            self._call(self._db.collection("events").document(event.id).create, self._event_doc(event),
                       **self._opts())
        except google_exceptions.Conflict:
            return False
        return True

    def pending_notifications(self, *, limit: int) -> list[tuple[AuditEvent, str]]:
        """Recorded events not published yet (oldest first), with their notification type."""
        query = (self._db.collection("events").where(filter=firestore.FieldFilter("notify_state", "==", "pending"))
                 .limit(limit))
        snaps = self._call(lambda: list(query.stream(timeout=self._timeout_s, retry=self._retry)))
        found = [(self._event_from(s.id, _fields(s)), str(_fields(s)["notify"])) for s in snaps]
        return sorted(found, key=lambda pair: (pair[0].at_ms, pair[0].id))

    def mark_published(self, event_ids: list[str], published_ms: int) -> int:
        """Note these events as published; the number of writes."""
        for start in range(0, len(event_ids), 500):
            batch = self._db.batch()
            for event_id in event_ids[start : start + 500]:
                batch.update(self._db.collection("events").document(event_id),
                             {"notify_state": "published", "published_at": ms_to_datetime(published_ms)})
            self._call(batch.commit, **self._opts())
        return len(event_ids)

    def events_for_session(self, session_id: str) -> list[dict[str, Any]]:
        query = self._db.collection("events").where(filter=firestore.FieldFilter("session_id", "==", session_id))
        return self._call(lambda: [(s.to_dict() or {}) | {"id": s.id} for s in query.stream(timeout=self._timeout_s)])
