"""The seat operations of the contract (openapi.yaml): acquire, heartbeat, borrow, release, validate.

Consistency (docs/design.md): Redis decides, Firestore records.
    acquire   Redis grant -> Firestore session create (+ audit event, one commit);
              if the commit fails the grant is rolled back and the caller gets 503.
    heartbeat Redis only (no Firestore cost); the lease token is re-signed locally.
    release   Redis end (seat free at once, end kept in a per-license outbox) ->
              Firestore close (+ event) -> outbox entry dropped. If Firestore fails,
              the retry (or the sweep) finishes the record from the outbox.
Token signing never calls KMS inside a request that changes state: the delegate's
certificate is made ready first, so a KMS outage is a 503 that changed nothing.

Machine keys (shared/domain/machine_keys.py): a machine principal acts only on the licenses
its key lists (403 otherwise), and a validate-mode key only validates (403 for the rest). On
a license with a CI pool (License.ci_seats) a machine takes a pool seat or none; its grants
and releases name the key in the audit log (actor `key:<id>`, `key_name` in the details).
Every refusal (403, 409, 410) of a license that has a vendor's support line carries it as
the error's `support` (the SDK prints it).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.clock import Clock
from shared.domain import AuditEvent, EndReason, License, Limit, Principal, SessionRecord
from shared.domain.leases import AcquireOutcome, HeartbeatOutcome, SeatCount
from shared.domain.sessions import end_message
from shared.domain.times import rfc3339
from shared.errors import (
    BackendUnavailable,
    BorrowNotAllowed,
    Forbidden,
    GroupSeatLimit,
    InvalidRequest,
    LicenseExpired,
    LicenseNotFound,
    LicenseSuspended,
    NoSeatAvailable,
    ServiceError,
    SessionExpired,
    SessionNotFound,
    TicketGone,
    UserSessionLimit,
)
from shared.ids import IdGenerator, license_id_of_session, license_id_of_ticket, new_ticket_id
from shared.licensing.license_directory import CachedLicense, LicenseDirectory
from shared.licensing.ports import (
    DurableRecord,
    LeaseProof,
    LeaseSigner,
    RateLimiter,
    SeatLedger,
    SignalNotes,
    UsageRecord,
)
from shared.licensing.rebuild import SeatRebuilder
from shared.licensing.requests import AcquireRequest, BorrowRequest, ReleaseRequest, SessionRequest, ValidateRequest
from shared.licensing.settlement import settle
from shared.observability import annotate

Outcome = TypeVar("Outcome")
_STALE_RETRIES = 3

log = logging.getLogger(__name__)


class _Stale(Exception):
    """The cached license changed since it was loaded: reload it and try again."""


@dataclass(frozen=True)
class SeatReply:
    """What a seat operation answers: the body, and whether it created a session (201)."""

    created: bool
    body: dict[str, Any]
    queued: bool = False
    """The caller waits in the queue (202): `body` is its ticket."""


@dataclass
class _Seen:
    """The license an operation last worked with: whose support line its refusal carries."""

    license: License | None = None


def _seats(n: int) -> str:
    return f"{n} seat" if n == 1 else f"{n} seats"


def _full_message(outcome: AcquireOutcome) -> str:
    """Why no seat: every one in use, said as a person would (no status codes, real plurals)."""
    if outcome.max_seats == 1:
        text = "the license's only seat is in use"
    else:
        text = f"all {_seats(outcome.max_seats)} of this license are in use"
    if outcome.overdraft:
        text += f", and its {outcome.overdraft} overdraft seat{'s' if outcome.overdraft != 1 else ''} too"
    if outcome.reserved_idle:
        free = "is" if outcome.reserved_idle == 1 else "are"
        text += (f"; {_seats(outcome.reserved_idle)} that {free} free {free} reserved for groups you are not in")
    if outcome.waiting:
        who = "person waits" if outcome.waiting == 1 else "people wait"
        text += f"; {outcome.waiting} {who} in line for a seat before you"
    if outcome.queue_full:
        text += "; the wait queue is full"
    return text + "; try again later"


@dataclass(frozen=True)
class _Counted:
    kind: str  # COUNTED | REBUILD (SeatRebuilder.on_trusted_table's outcome)


def _denial_reason(refusal: ServiceError) -> str | None:
    """The usage counter of an acquire refused before the seat table was asked (the table
    counts its own refusals), or None for one that is not a refusal of a seat (not found)."""
    if isinstance(refusal, LicenseSuspended):
        return "suspended"
    if isinstance(refusal, LicenseExpired):
        return "expired"
    if isinstance(refusal, Forbidden):
        return "policy"
    return None


class SeatService:
    def __init__(self, *, licenses: LicenseDirectory, seats: SeatLedger, store: DurableRecord, usage: UsageRecord,
                 signer: LeaseSigner, lease_proof: LeaseProof, clock: Clock, ids: IdGenerator, issuer: str,
                 rate_limiter: RateLimiter, license_acquire_limit: Limit, signals: SignalNotes | None = None):
        self._licenses = licenses
        self._signals = signals
        self._seats = seats
        self._rebuilder = SeatRebuilder(seats=seats, store=store, usage=usage, clock=clock)
        self._lease_proof = lease_proof
        self._store = store
        self._signer = signer
        self._clock = clock
        self._ids = ids
        self._issuer = issuer
        self._rate_limiter = rate_limiter
        self._license_acquire_limit = license_acquire_limit

    # -- shared steps ------------------------------------------------------------------
    @staticmethod
    @contextmanager
    def _support_line(seen: _Seen) -> Iterator[None]:
        """A refusal (403, 409, 410) of a license with a vendor's support line carries it."""
        try:
            yield
        except ServiceError as error:
            support = seen.license.support_contact if seen.license is not None else None
            if support and error.http_status in (403, 409, 410):
                error.details.setdefault("support", support)
            raise

    @staticmethod
    def _check_machine(caller: Principal, lic: License, *, holds_seat: bool) -> None:
        """A machine key acts only on its own licenses, and a validate-mode one only validates."""
        machine = caller.machine
        if machine is None:
            return
        if not machine.covers(lic.id):
            raise Forbidden(f"machine key {machine.key_id} is not for this license; its administrator lists the "
                            "licenses a key may use when making it")
        if holds_seat and not machine.holds_seats:
            raise Forbidden(f"machine key {machine.key_id} may only validate this license (mode validate): it holds "
                            "no seat, so it cannot acquire, heartbeat, borrow or release")

    @staticmethod
    def _actor_details(caller: Principal) -> dict[str, Any]:
        """What an audit event says of its actor beyond the uid: a machine key's name."""
        return {"key_name": caller.machine.name} if caller.machine is not None else {}

    def _with_fresh_license(self, entry: CachedLicense, attempt: Callable[[CachedLicense], Outcome]) -> Outcome:
        """Run `attempt` on the cached license; when it raises _Stale, reload the license and retry."""
        for _ in range(_STALE_RETRIES):
            try:
                return attempt(entry)
            except _Stale:
                reloaded = self._licenses.by_id(entry.license.id, fresh=True)
                if reloaded is None:
                    raise LicenseNotFound("the license no longer exists") from None
                entry = reloaded
        raise BackendUnavailable("license metadata (changing too fast)")

    def _unless_stale(self, current: CachedLicense, check: Callable[[], Outcome]) -> Outcome:
        """Run a check on cached metadata and return its value; a refusal stands only if
        the copy is current, otherwise _Stale (the caller reloads and retries).

        The seat scripts catch stale copies themselves, but these checks run before any
        script: without this, a resumed license would stay refused until its cache entry
        aged out.
        """
        try:
            return check()
        except ServiceError:
            if self._seats.generation(current.license.id) != current.generation:
                raise _Stale() from None
            raise

    @staticmethod
    def _check_usable(lic: License, caller: Principal, now_ms: int) -> None:
        """Fixed order: a caller the license does not admit learns nothing of its state."""
        SeatService._check_admitted(lic, caller)
        SeatService._check_in_force(lic, now_ms)

    @staticmethod
    def _check_admitted(lic: License, caller: Principal) -> None:
        if lic.revoked_ms is not None:
            raise LicenseNotFound("no license has this key")
        # A machine key has no email: its administrator named the license when issuing it.
        if (not caller.is_machine and not lic.admits_email(caller.email, caller.email_verified)
                and not caller.administers(lic.tenant_id)):
            raise Forbidden("this license is restricted to users of its allowed email domains (verified email)")

    @staticmethod
    def _check_policy_admits(lic: License, caller: Principal, groups: tuple[str, ...], hardware_id: str) -> None:
        """Exclude, then include: the seat policy's steps that need no seat table."""
        refusal = lic.policy.refusal(caller, groups, hardware_id)
        if refusal is not None:
            raise Forbidden(refusal.message, rule=refusal.rule)

    @staticmethod
    def _check_in_force(lic: License, now_ms: int) -> None:
        if lic.suspended:
            raise LicenseSuspended("the license is suspended; contact its administrator")
        if lic.is_expired(now_ms):
            raise LicenseExpired("the license has expired", expired_at=rfc3339(lic.expires_ms))

    def _lease_token(self, lic: License, session_id: str, uid: str, hardware_id: str, now_ms: int,
                     expires_ms: int, *, overage: bool = False, ci: bool = False) -> str:
        # A lease that outlives a normal ttl from now is a borrow (only borrow extends past it).
        borrowed = expires_ms > now_ms + lic.lease_ttl_s * 1000
        exp_s, grace_s = expires_ms // 1000, lic.offline_grace_s
        if lic.expires_ms is not None:
            # Nothing signed outlives the license: neither the lease nor its offline grace.
            license_end_s = lic.expires_ms // 1000
            exp_s = min(exp_s, license_end_s)
            grace_s = max(0, min(grace_s, license_end_s - exp_s))
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": session_id,
            "lic": lic.id,
            "ten": lic.tenant_id,
            "uid": uid,
            "hw": hardware_id,
            "tier": lic.tier,
            "features": list(lic.features),
            "iat": now_ms // 1000,
            "exp": exp_s,  # never claims more than the lease
            "grace": grace_s,  # valid offline until exp + grace, signed
            "bor": borrowed,
            "overage": overage,  # a seat beyond max_seats, within the license's overdraft
        }
        if ci:
            claims["ci"] = True  # a seat of the license's CI pool (a machine key's)
        return self._signer.sign_lease(claims)

    def _license_of_session(self, session_id: str) -> CachedLicense | None:
        license_id = license_id_of_session(session_id)
        if license_id is None:
            raise SessionNotFound("no session has this id")
        annotate(license=license_id, session=session_id)
        return self._licenses.by_id(license_id)

    def _settled_session(self, session_id: str, caller: Principal, tenant_id: str | None) -> SessionRecord:
        """A session Redis no longer knows: its durable record, checked for ownership."""
        record = self._store.get_session(session_id)
        if record is None:
            raise SessionNotFound("no session has this id")
        if record.uid != caller.uid and not caller.administers(tenant_id or record.tenant_id):
            raise Forbidden("this session belongs to another user")
        return record

    # -- operations -----------------------------------------------------------------------
    def _note(self, caller: Principal, lic: License, now_ms: int, *, pair: tuple[str, str] | None = None,
              address: tuple[str, str, str] | None = None, grant: tuple[str, str] | None = None) -> None:
        """Conflict detection's notes (shared/seats/signals.py): a person's use, not a machine
        key's (a build farm's one key on many runners is what it is for)."""
        if self._signals is not None and not caller.is_machine:
            self._signals.note(lic.id, now_ms=now_ms, keep_ms=lic.anomaly_rules.longest_window_ms, pair=pair,
                               address=address, grant=grant)

    def acquire_seat(self, caller: Principal, request: AcquireRequest, *, client_ip: str | None = None) -> SeatReply:
        entry = self._licenses.by_key(request.license_key)
        annotate(tenant=entry.license.tenant_id, license=entry.license.id)
        seen = _Seen(entry.license)
        with self._support_line(seen):
            self._check_machine(caller, entry.license, holds_seat=True)
            return self._acquire(caller, request, entry, seen, client_ip)

    def _acquire(self, caller: Principal, request: AcquireRequest, entry: CachedLicense, seen: _Seen,
                 client_ip: str | None) -> SeatReply:
        self._rate_limiter.charge([("license", entry.license.id, self._license_acquire_limit)])
        self._signer.prepare(self._clock.now_ms() // 1000)
        new_session_id = self._ids.session_id(entry.license.id)
        if request.ticket is not None and license_id_of_ticket(request.ticket) != entry.license.id:
            raise TicketGone("this ticket is not a place in this license's queue; acquire with wait again")
        new_ticket = new_ticket_id(entry.license.id) if request.wait and request.ticket is None else ""
        # What the license's administrators see of the seat (holders: console, licensectl).
        info = request.client
        shown = {k: v for k, v in (("email", caller.email), ("hostname", info.hostname if info else ""),
                                   ("version", info.version if info else "")) if v}

        def attempt(current: CachedLicense) -> tuple[License, int, tuple[str, ...], AcquireOutcome]:
            lic, now_ms = current.license, self._clock.now_ms()
            seen.license = lic
            # A machine taking a seat of the CI pool is in no group: the pool is its bound.
            groups = () if caller.is_machine and lic.ci_seats else lic.policy.groups_of(caller)

            def admitted() -> None:
                self._check_usable(lic, caller, now_ms)
                self._check_policy_admits(lic, caller, groups, request.hardware_id)

            self._unless_stale(current, admitted)
            outcome = self._rebuilder.on_trusted_table(lic, lambda: self._seats.acquire(
                lic.id, generation=current.generation, now_ms=now_ms, ttl_ms=lic.lease_ttl_s * 1000,
                max_seats=lic.max_seats, uid=caller.uid, hardware_id=request.hardware_id,
                new_session_id=new_session_id, max_sessions_per_user=lic.max_sessions_per_user,
                policy=lic.script_policy(), groups=groups,
                ticket=request.ticket, wait=request.wait, new_ticket=new_ticket, shown=shown,
            ))
            if outcome.kind == "STALE":
                raise _Stale()
            return lic, now_ms, groups, outcome

        try:
            lic, now_ms, groups, outcome = self._with_fresh_license(entry, attempt)
        except ServiceError as refusal:
            reason = _denial_reason(refusal)
            if reason is not None and seen.license is not None:
                self._count_denial(seen.license, reason)
            raise
        granted = outcome.kind == "GRANTED"
        self._note(caller, lic, now_ms, pair=(caller.uid, request.hardware_id),
                   grant=(caller.uid, outcome.session_id) if granted else None,
                   address=(outcome.session_id, caller.uid, client_ip) if granted and client_ip else None)
        if outcome.kind == "TICKET_GONE":
            raise TicketGone("this place in the queue has lapsed (polled too late, or its seat not claimed in time) "
                             "or was cancelled; acquire with wait again")
        if outcome.kind == "QUEUED":
            queue = lic.policy.queue
            assert queue is not None  # the script queues only where the policy has a queue
            annotate(ticket=outcome.ticket)
            return SeatReply(created=False, queued=True, body={
                "ticket": outcome.ticket,
                "position": outcome.position,
                "queue_length": outcome.queue_length,
                "poll_interval_s": queue.poll_interval_s,
                "claim_window_s": queue.claim_window_s,
                # No estimate: when a holder leaves is not known (most renew), and a number
                # that is usually wrong is worse than none.
                "estimate_s": None,
            })
        if outcome.kind == "GROUP_LIMIT":
            raise GroupSeatLimit(
                f"your group {outcome.group} already holds {outcome.used} of this license's seats, "
                f"its maximum of {outcome.max_seats}",
                group={"name": outcome.group, "used": outcome.used, "max": outcome.max_seats},
            )
        if outcome.kind == "USER_LIMIT":
            raise UserSessionLimit(
                f"you already hold {outcome.used} session{'s' if outcome.used != 1 else ''} of this license, "
                "its limit per user; "
                "release one on another machine first",
                sessions={"used": outcome.used, "max": outcome.max_seats},
            )
        seats = {"used": outcome.used, "max": outcome.max_seats}
        if outcome.kind == "FULL" and outcome.ci:
            wait_s = max(1, math.ceil((outcome.earliest_expiry_ms - now_ms) / 1000)) if outcome.earliest_expiry_ms \
                else 1
            raise NoSeatAvailable(
                f"{'the only CI seat' if outcome.max_seats == 1 else f'all {outcome.max_seats} CI seats'} of this "
                "license are in use (machine keys hold the license's CI seats, not its users' seats); try again later",
                retry_after_s=wait_s, seats=seats, pool="ci")
        if outcome.kind == "FULL":
            # Retry-After: the soonest a seat could free (a holder may well renew it).
            wait_s = max(1, math.ceil((outcome.earliest_expiry_ms - now_ms) / 1000)) if outcome.earliest_expiry_ms \
                else 1
            policy_counts = {k: v for k, v in (("overdraft", outcome.overdraft),
                                                ("reserved_for_others", outcome.reserved_idle),
                                                ("queued", outcome.waiting)) if v}
            queue_state = {"queue": {"full": True}} if outcome.queue_full else {}
            raise NoSeatAvailable(_full_message(outcome), retry_after_s=wait_s,
                                  seats={**seats, **policy_counts}, **queue_state)
        annotate(session=outcome.session_id)
        if outcome.kind == "GRANTED":
            client = request.client.model_dump() if request.client else {}
            session = SessionRecord(
                id=outcome.session_id, license_id=lic.id, tenant_id=lic.tenant_id, uid=caller.uid,
                hardware_id=request.hardware_id, acquired_ms=now_ms, lease_expires_ms=outcome.expires_ms, client=client,
                groups=groups, reserved_for=outcome.reserved_for or None, overage=outcome.overage, ci=outcome.ci,
            )
            seat_class = {k: v for k, v in (("reserved_for", outcome.reserved_for), ("overage", outcome.overage),
                                            ("ci", outcome.ci)) if v}
            event = AuditEvent(
                id=f"{outcome.session_id}:acquire", tenant_id=lic.tenant_id, license_id=lic.id,
                session_id=outcome.session_id, type="acquire", actor=caller.uid, at_ms=now_ms,
                details={"hardware_id": request.hardware_id, "seats_used": outcome.used, **seat_class, **client,
                         **self._actor_details(caller)},
            )
            more = [AuditEvent(
                id=f"{outcome.session_id}:overage", tenant_id=lic.tenant_id, license_id=lic.id,
                session_id=outcome.session_id, type="overage", actor=caller.uid, at_ms=now_ms,
                details={"seats_used": outcome.used, "max_seats": outcome.max_seats,
                         "overdraft": lic.policy.overdraft(lic.max_seats)},
            )] if outcome.overage else []
            try:
                # Indexed after the grant: the sweep's race-free unindexing relies on this order.
                self._seats.index_license(lic.id)
                self._store.record_grant(session, event, *more)
            except BaseException:
                # No durable record, no seat: undo the grant before reporting the failure.
                self._seats.rollback(lic.id, outcome.session_id, now_ms=now_ms)
                raise
        token = self._lease_token(lic, outcome.session_id, caller.uid, request.hardware_id, now_ms, outcome.expires_ms,
                                  overage=outcome.overage, ci=outcome.ci)
        body = {
            "session_id": outcome.session_id,
            "token": token,
            "expires_at": rfc3339(outcome.expires_ms),
            "heartbeat_interval_s": lic.heartbeat_interval_s,
            "seats": seats,
            "license": lic.public_view(),
            "overage": outcome.overage,
            "ci": outcome.ci,
        }
        if outcome.reserved_for:
            body["reserved_for"] = outcome.reserved_for
        return SeatReply(created=outcome.kind == "GRANTED", body=body)

    def _extend(self, caller: Principal, session_id: str, ttl_ms_for: Callable[[License], int], *,
                lease_token: str | None, borrow: bool = False) -> tuple[License, int, HeartbeatOutcome]:
        """Extend the caller's live lease to now + ttl (never shortening it): heartbeat and borrow.

        Returns (license, now, outcome) for a live lease; raises for everything else. A
        revoked license extends nothing and revives nothing: no token is signed for it.
        A lease restored after a Redis loss is extended as the caller's own only if
        `lease_token` proves it was still valid; otherwise it is revived, seats allowing.
        """
        entry = self._license_of_session(session_id)
        if entry is None:
            self._settled_session(session_id, caller, None)
            raise SessionExpired(EndReason.REVOKED.client_message)
        annotate(tenant=entry.license.tenant_id)
        seen = _Seen(entry.license)
        with self._support_line(seen):
            self._check_machine(caller, entry.license, holds_seat=True)
            return self._extend_lease(caller, session_id, entry, seen, ttl_ms_for, lease_token=lease_token,
                                      borrow=borrow)

    def _extend_lease(self, caller: Principal, session_id: str, entry: CachedLicense, seen: _Seen,
                      ttl_ms_for: Callable[[License], int], *, lease_token: str | None,
                      borrow: bool) -> tuple[License, int, HeartbeatOutcome]:
        self._signer.prepare(self._clock.now_ms() // 1000)

        def attempt(current: CachedLicense) -> tuple[License, int, HeartbeatOutcome]:
            lic, now_ms = current.license, self._clock.now_ms()
            seen.license = lic

            def checked_ttl_ms() -> int:
                # Refused before the script runs: a refused request must not extend the lease.
                if lic.revoked_ms is not None:
                    raise SessionExpired(EndReason.REVOKED.client_message)
                self._check_in_force(lic, now_ms)
                return ttl_ms_for(lic)

            ttl_ms = self._unless_stale(current, checked_ttl_ms)

            def heartbeat(proven: bool | None = None) -> HeartbeatOutcome:
                return self._rebuilder.on_trusted_table(lic, lambda: self._seats.heartbeat(
                    lic.id, session_id, generation=current.generation, now_ms=now_ms, ttl_ms=ttl_ms,
                    caller_uid=caller.uid, may_act_for_others=caller.administers(lic.tenant_id),
                    revive_window_ms=lic.revive_window_s * 1000, max_seats=lic.max_seats, borrow=borrow,
                    proven=proven, policy=lic.script_policy(),
                ))

            outcome = heartbeat()
            if outcome.kind == "PROOF":  # restored after a loss: was its lease still valid?
                outcome = heartbeat(proven=lease_token is not None and self._lease_proof.proves_lease(
                    lease_token, session_id=session_id, now_s=now_ms // 1000))
            if outcome.kind == "STALE":
                raise _Stale()
            return lic, now_ms, outcome

        lic, now_ms, outcome = self._with_fresh_license(entry, attempt)
        if outcome.kind == "FORBIDDEN":
            raise Forbidden("this session belongs to another user")
        if outcome.kind == "REVIVED":
            # Rare, so worth its one write: the audit log shows the lapse and the revival.
            self._seats.count_revival()
            restored = outcome.expired_ms == 0  # restored after a Redis loss, no valid token shown
            details = ({"restored_without_proof": True} if restored else
                       {"expired_at": rfc3339(outcome.expired_ms), "late_by_ms": now_ms - outcome.expired_ms})
            self._store.record_event(AuditEvent(
                id=f"{session_id}:revived:{now_ms if restored else outcome.expired_ms}", tenant_id=lic.tenant_id,
                license_id=lic.id, session_id=session_id, type="revived", actor=caller.uid, at_ms=now_ms,
                details={**details, **self._actor_details(caller)},
            ))
        if outcome.kind == "ENDED":
            raise SessionExpired(end_message(outcome.end_state))
        if outcome.kind == "UNKNOWN":
            record = self._settled_session(session_id, caller, lic.tenant_id)
            raise SessionExpired(end_message(record.end_reason))
        return lic, now_ms, outcome

    def _count_denial(self, lic: License, reason: str) -> None:
        """Count a refusal the seat table did not see (a usage statistic: a failure to count
        never changes the answer). A table that awaits its rebuild (a license nobody has
        used since Redis started, say) is rebuilt first, as a seat operation would."""
        def count() -> _Counted:
            return _Counted("COUNTED" if self._seats.count_denial(lic.id, now_ms=self._clock.now_ms(),
                                                                   reason=reason) else "REBUILD")

        try:
            self._rebuilder.on_trusted_table(lic, count)
        except BackendUnavailable:
            log.warning("a refusal of %s (%s) was not counted: its seat table is unavailable", lic.id, reason)

    def heartbeat(self, caller: Principal, request: SessionRequest, *, client_ip: str | None = None) -> SeatReply:
        lic, now_ms, outcome = self._extend(caller, request.session_id, lambda lic: lic.lease_ttl_s * 1000,
                                            lease_token=request.lease_token)
        if client_ip:
            self._note(caller, lic, now_ms, address=(request.session_id, outcome.uid, client_ip))
        token = self._lease_token(lic, request.session_id, outcome.uid, outcome.hardware_id, now_ms, outcome.expires_ms,
                                  overage=outcome.overage, ci=outcome.ci)
        return SeatReply(False, {
            "status": "ok",
            "session_id": request.session_id,
            "token": token,
            "expires_at": rfc3339(outcome.expires_ms),
            "heartbeat_interval_s": lic.heartbeat_interval_s,
            "overage": outcome.overage,
            "ci": outcome.ci,
        })

    def borrow(self, caller: Principal, request: BorrowRequest) -> SeatReply:
        """Check the seat out: held server-side until `duration_s` from now, no heartbeat needed."""

        def borrow_ttl_ms(lic: License) -> int:
            if lic.max_borrow_s == 0:
                raise BorrowNotAllowed("this license does not allow borrowing seats")
            if request.duration_s > lic.max_borrow_s:
                raise InvalidRequest(f"a borrow may last at most {lic.max_borrow_s} s on this license",
                                     max_borrow_s=lic.max_borrow_s)
            return request.duration_s * 1000

        lic, now_ms, outcome = self._extend(caller, request.session_id, borrow_ttl_ms, borrow=True,
                                            lease_token=request.lease_token)
        self._store.record_borrow(request.session_id, outcome.expires_ms, AuditEvent(
            id=f"{request.session_id}:borrow:{outcome.expires_ms}", tenant_id=lic.tenant_id, license_id=lic.id,
            session_id=request.session_id, type="borrow", actor=caller.uid, at_ms=now_ms,
            details={"until": rfc3339(outcome.expires_ms), "hardware_id": outcome.hardware_id,
                     **self._actor_details(caller)},
        ))
        token = self._lease_token(lic, request.session_id, outcome.uid, outcome.hardware_id, now_ms, outcome.expires_ms,
                                  overage=outcome.overage, ci=outcome.ci)
        return SeatReply(False, {
            "session_id": request.session_id,
            "token": token,
            "expires_at": rfc3339(outcome.expires_ms),
            "borrowed_until": rfc3339(outcome.expires_ms),
        })

    def return_borrow(self, caller: Principal, request: SessionRequest) -> SeatReply:
        """Give a borrowed seat back early (any live seat, in fact: recorded as `returned`)."""
        ended = self._end(caller, request.session_id, EndReason.RETURNED)
        return SeatReply(False, {"status": "returned" if ended else "already_released"})

    def release(self, caller: Principal, request: ReleaseRequest) -> SeatReply:
        if (request.session_id is None) == (request.ticket is None):
            raise InvalidRequest("give session_id (release a seat) or ticket (leave the queue), not both or neither")
        if request.ticket is not None:
            return self._leave_queue(caller, request.ticket)
        assert request.session_id is not None
        ended = self._end(caller, request.session_id, EndReason.RELEASED)
        return SeatReply(False, {"status": "released" if ended else "already_released"})

    def _leave_queue(self, caller: Principal, ticket: str) -> SeatReply:
        license_id = license_id_of_ticket(ticket)
        entry = self._licenses.by_id(license_id) if license_id else None
        if entry is None:
            return SeatReply(False, {"status": "not_queued"})
        lic = entry.license
        annotate(tenant=lic.tenant_id, license=lic.id, ticket=ticket)
        with self._support_line(_Seen(lic)):
            self._check_machine(caller, lic, holds_seat=True)
            outcome = self._seats.cancel_ticket(lic.id, ticket, caller_uid=caller.uid,
                                                may_act_for_others=caller.administers(lic.tenant_id))
            if outcome == "FORBIDDEN":
                raise Forbidden("this ticket belongs to another user")
        return SeatReply(False, {"status": "left_queue" if outcome == "CANCELLED" else "not_queued"})

    def _end(self, caller: Principal, session_id: str, end: EndReason) -> bool:
        """End the caller's session now: True, or False if it had ended before."""
        entry = self._license_of_session(session_id)
        if entry is None:
            self._settled_session(session_id, caller, None)
            return False
        lic = entry.license
        annotate(tenant=lic.tenant_id)
        with self._support_line(_Seen(lic)):
            self._check_machine(caller, lic, holds_seat=True)
            outcome = self._rebuilder.on_trusted_table(lic, lambda: self._seats.release(
                lic.id, session_id, now_ms=self._clock.now_ms(), caller_uid=caller.uid,
                may_act_for_others=caller.administers(lic.tenant_id), end=end,
            ))
            if outcome.kind == "FORBIDDEN":
                raise Forbidden("this session belongs to another user")
            if outcome.end is None:  # UNKNOWN
                self._settled_session(session_id, caller, lic.tenant_id)
                return False
        # ENDED or ALREADY: either way make the end durable (a retry after a failed
        # Firestore write lands here with ALREADY and finishes the job).
        settle(self._store, self._seats, lic, [outcome.end], actor=caller.uid,
               actor_details=self._actor_details(caller))
        return outcome.kind == "ENDED" and outcome.end.state == end

    def validate(self, caller: Principal, request: ValidateRequest) -> SeatReply:
        entry = self._licenses.by_key(request.license_key)
        annotate(tenant=entry.license.tenant_id, license=entry.license.id)
        seen = _Seen(entry.license)
        with self._support_line(seen):
            self._check_machine(caller, entry.license, holds_seat=False)
            return self._validate(caller, entry, seen)

    def _validate(self, caller: Principal, entry: CachedLicense, seen: _Seen) -> SeatReply:
        def attempt(current: CachedLicense) -> tuple[License, SeatCount]:
            lic = current.license
            seen.license = lic
            self._unless_stale(current, lambda: self._check_admitted(lic, caller))
            count = self._rebuilder.on_trusted_table(
                lic, lambda: self._seats.count(lic.id, generation=current.generation, now_ms=self._clock.now_ms()))
            if count.kind == "STALE":
                raise _Stale()
            return lic, count

        lic, count = self._with_fresh_license(entry, attempt)
        # Fixed order, most fundamental first.
        if lic.suspended:
            code = "SUSPENDED"
        elif lic.is_expired(self._clock.now_ms()):
            code = "EXPIRED"
        elif (count.ci_used >= lic.ci_seats if caller.is_machine and lic.ci_seats else count.used >= lic.max_seats):
            code = "NO_SEAT_AVAILABLE"  # a machine on a license with a CI pool: of the pool
        else:
            code = "VALID"
        body: dict[str, Any] = {
            "valid": code == "VALID",
            "code": code,
            "license": lic.public_view(),
            "seats": {"used": count.used, "max": lic.max_seats},
        }
        if lic.ci_seats:
            body["ci_seats"] = {"used": count.ci_used, "max": lic.ci_seats}
        return SeatReply(False, body)
