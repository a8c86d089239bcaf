"""Every failure the SDK reports, one class per server error code (API.md) plus its own.

    LicenseError                     .code .status .message .details .retry_after .support
    ├── InvalidRequest               400 INVALID_REQUEST
    ├── Unauthenticated              401 UNAUTHENTICATED
    ├── Forbidden                    403 FORBIDDEN           .rule ("excluded", "not_included" or None)
    │   ├── LicenseSuspended         403 LICENSE_SUSPENDED
    │   └── BorrowNotAllowed         403 BORROW_NOT_ALLOWED
    ├── NotFound                     404 NOT_FOUND
    │   ├── LicenseNotFound          404 LICENSE_NOT_FOUND
    │   └── SessionNotFound          404 SESSION_NOT_FOUND
    ├── NoSeatAvailable              409 NO_SEAT_AVAILABLE   .seats_used .seats_max .queue_full .waited_s
    │   │                                                    .queue_position .queue_length
    │   ├── UserSessionLimit         409 USER_SESSION_LIMIT
    │   └── GroupSeatLimit           409 GROUP_SEAT_LIMIT    .group (its name; .seats_used/.seats_max: the group's)
    ├── Gone                         410
    │   ├── LicenseExpired           410 LICENSE_EXPIRED
    │   ├── SessionExpired           410 SESSION_EXPIRED
    │   └── TicketGone               410 TICKET_GONE         a place in the wait queue lapsed or was cancelled
    ├── RateLimited                  429 RATE_LIMITED        .retry_after
    ├── ServiceUnavailable           503 UNAVAILABLE (and any other 5xx)
    ├── NetworkError                 NETWORK: no answer (connection refused, timeout, DNS)
    ├── AuthError                    AUTH_FAILED: the ID-token provider could not give a token
    ├── TokenInvalid                 TOKEN_INVALID: a lease token failed offline verification
    │   ├── TokenExpired             TOKEN_EXPIRED: genuine, but past exp + grace (+ skew)
    │   └── TrustNotPinned           TRUST_NOT_PINNED: offline verification asked, no trusted root pinned
    ├── NoLease                      NO_LEASE: nothing held / no stored session or borrow
    ├── LeaseLost                    LEASE_LOST: the lease could not be kept
    └── WebhookInvalid               WEBHOOK_INVALID: a received webhook failed verification  .reason

`message` is the server's, written for people (no status codes, real plurals). `support`
is the vendor's support line when the server's refusal carries one (`details["support"]`).
A `NoSeatAvailable` raised after `acquire(wait_s=...)` gave up says so: `waited_s` is how
long it waited, and `queue_position` / `queue_length` where it stood in the license's
wait queue when it gave up (None if the license has no queue, or it never got a place).
"""

from __future__ import annotations

from typing import Any


class LicenseError(Exception):
    """Base class: `code` is the server's error code (or the SDK's own, see above)."""

    code = "ERROR"
    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None,
                 details: dict[str, Any] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.retry_after = retry_after
        self.details: dict[str, Any] = dict(details or {})

    @property
    def retryable(self) -> bool:
        """True when the same call may succeed later without anything changing on our side."""
        return False

    @property
    def support(self) -> str | None:
        """The vendor's support line the server sent with the refusal (`details["support"]`), if any."""
        value = self.details.get("support")
        return value if isinstance(value, str) and value.strip() else None

    def __str__(self) -> str:
        prefix = f"{self.status} {self.code}" if self.status else self.code
        return f"{prefix}: {self.message}"


class InvalidRequest(LicenseError):
    code, status = "INVALID_REQUEST", 400


class Unauthenticated(LicenseError):
    code, status = "UNAUTHENTICATED", 401


class Forbidden(LicenseError):
    """Refused for this caller. `rule` names the seat-policy rule that refused it:
    "excluded" (the administrator excluded this user or machine) or "not_included" (the
    license admits only the users and groups it includes); None for other refusals."""

    code, status = "FORBIDDEN", 403

    @property
    def rule(self) -> str | None:
        value = self.details.get("rule")
        return value if isinstance(value, str) else None


class LicenseSuspended(Forbidden):
    code = "LICENSE_SUSPENDED"


class BorrowNotAllowed(Forbidden):
    code = "BORROW_NOT_ALLOWED"


class NotFound(LicenseError):
    code, status = "NOT_FOUND", 404


class LicenseNotFound(NotFound):
    code = "LICENSE_NOT_FOUND"


class SessionNotFound(NotFound):
    code = "SESSION_NOT_FOUND"


class NoSeatAvailable(LicenseError):
    """Every seat is taken: `seats_used`/`seats_max`; `retry_after` is the server's
    Retry-After, the soonest a seat *could* free (most holders renew theirs: it is no
    promise). `queue_full`: the license's wait queue is at its bound.

    After `acquire(wait_s=...)` gave up, `waited_s` says how long it waited, and
    `queue_position` / `queue_length` where it stood in the queue at the end (the place
    was given up before this was raised). `reason` is then the server's last refusal
    message, if the last answer was one (the message itself says it waited)."""

    code, status = "NO_SEAT_AVAILABLE", 409
    reason: str | None = None

    @property
    def _counts(self) -> dict[str, Any]:
        # NO_SEAT_AVAILABLE says `seats`; USER_SESSION_LIMIT `sessions`; GROUP_SEAT_LIMIT `group`.
        for name in ("seats", "sessions", "group"):
            counts = self.details.get(name)
            if isinstance(counts, dict):
                return counts
        return {}

    @property
    def seats_used(self) -> int | None:
        return self._counts.get("used")

    @property
    def seats_max(self) -> int | None:
        return self._counts.get("max")

    @property
    def _queue(self) -> dict[str, Any]:
        queue = self.details.get("queue")
        return queue if isinstance(queue, dict) else {}

    @property
    def queue_full(self) -> bool:
        return self._queue.get("full") is True

    @property
    def queue_position(self) -> int | None:
        return self._queue.get("position")

    @property
    def queue_length(self) -> int | None:
        return self._queue.get("length")

    @property
    def waited_s(self) -> float | None:
        value = self.details.get("waited_s")
        return float(value) if isinstance(value, (int, float)) else None


class UserSessionLimit(NoSeatAvailable):
    code = "USER_SESSION_LIMIT"


class GroupSeatLimit(NoSeatAvailable):
    """The caller's group (seat policy `max`) holds all the seats it may: `group` is its
    name, `seats_used` / `seats_max` the group's seats in use and its maximum."""

    code = "GROUP_SEAT_LIMIT"

    @property
    def group(self) -> str | None:
        name = self._counts.get("name")
        return name if isinstance(name, str) else None


class Gone(LicenseError):
    code, status = "GONE", 410


class LicenseExpired(Gone):
    code = "LICENSE_EXPIRED"


class SessionExpired(Gone):
    code = "SESSION_EXPIRED"


class TicketGone(Gone):
    """A place in a license's wait queue is no more: it lapsed (not polled in time, or its
    held seat not claimed in its window), was cancelled, or is not this caller's. Queue again."""

    code = "TICKET_GONE"


class RateLimited(LicenseError):
    code, status = "RATE_LIMITED", 429

    @property
    def retryable(self) -> bool:
        return True


class ServiceUnavailable(LicenseError):
    code, status = "UNAVAILABLE", 503

    @property
    def retryable(self) -> bool:
        return True


class NetworkError(LicenseError):
    """No answer from the server: connection refused or reset, timeout, DNS failure."""

    code = "NETWORK"

    @property
    def retryable(self) -> bool:
        return True


class AuthError(LicenseError):
    """The ID-token provider failed (sign-in or refresh). `permanent` when only a new
    sign-in can fix it (wrong password, revoked refresh token, disabled user)."""

    code = "AUTH_FAILED"

    def __init__(self, message: str, *, permanent: bool = False, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.permanent = permanent

    @property
    def retryable(self) -> bool:
        return not self.permanent


class TokenInvalid(LicenseError):
    """A lease token failed verification (signature, chain, format, binding)."""

    code = "TOKEN_INVALID"


class TokenExpired(TokenInvalid):
    """A genuine lease token past its validity (exp + grace + clock-skew tolerance)."""

    code = "TOKEN_EXPIRED"


class TrustNotPinned(TokenInvalid):
    """Offline verification was asked for, but the tool pins no trusted root key (`trusted_roots`)."""

    code = "TRUST_NOT_PINNED"


class NoLease(LicenseError):
    code = "NO_LEASE"


class LeaseLost(LicenseError):
    code = "LEASE_LOST"


class WebhookInvalid(LicenseError):
    """A webhook delivery that does not verify (webhooks.py `verify_webhook`): answer it
    with a 4xx and do not act on it. `reason` says what failed: "missing_header",
    "malformed_header", "no_matching_signature", "timestamp_out_of_tolerance",
    "malformed_body" or "header_mismatch"."""

    code = "WEBHOOK_INVALID"

    def __init__(self, message: str, *, reason: str, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.details["reason"] = reason

    @property
    def reason(self) -> str:
        return str(self.details["reason"])


_BY_CODE: dict[str, type[LicenseError]] = {
    cls.code: cls
    for cls in (InvalidRequest, Unauthenticated, Forbidden, LicenseSuspended, BorrowNotAllowed, NotFound,
                LicenseNotFound, SessionNotFound, NoSeatAvailable, UserSessionLimit, GroupSeatLimit, Gone,
                LicenseExpired, SessionExpired, TicketGone, RateLimited, ServiceUnavailable)
}
_BY_STATUS: dict[int, type[LicenseError]] = {
    400: InvalidRequest, 401: Unauthenticated, 403: Forbidden, 404: NotFound, 409: LicenseError,
    410: Gone, 429: RateLimited,
}


def from_response(status: int, body: Any, retry_after: float | None) -> LicenseError:
    """The typed exception for an error answer `{"error": {"code", "message", ...}}`."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    stated_code, stated_message = error.get("code"), error.get("message")
    code = stated_code if isinstance(stated_code, str) else None
    message = stated_message if isinstance(stated_message, str) else f"HTTP {status}"
    details = {k: v for k, v in error.items() if k not in ("code", "message")}
    cls = _BY_CODE.get(code or "")
    if cls is None:
        cls = ServiceUnavailable if status >= 500 else _BY_STATUS.get(status, LicenseError)
    return cls(message, status=status, retry_after=retry_after, details=details, code=code or cls.code)
