"""Every failure the SDK reports, one class per server error code (API.md) plus its own.

    LicenseError                     .code .status .message .details .retry_after
    ├── InvalidRequest               400 INVALID_REQUEST
    ├── Unauthenticated              401 UNAUTHENTICATED
    ├── Forbidden                    403 FORBIDDEN
    │   ├── LicenseSuspended         403 LICENSE_SUSPENDED
    │   └── BorrowNotAllowed         403 BORROW_NOT_ALLOWED
    ├── NotFound                     404 NOT_FOUND
    │   ├── LicenseNotFound          404 LICENSE_NOT_FOUND
    │   └── SessionNotFound          404 SESSION_NOT_FOUND
    ├── NoSeatAvailable              409 NO_SEAT_AVAILABLE   .seats_used .seats_max .retry_after
    │   └── UserSessionLimit         409 USER_SESSION_LIMIT
    ├── Gone                         410
    │   ├── LicenseExpired           410 LICENSE_EXPIRED
    │   └── SessionExpired           410 SESSION_EXPIRED
    ├── RateLimited                  429 RATE_LIMITED        .retry_after
    ├── ServiceUnavailable           503 UNAVAILABLE (and any other 5xx)
    ├── NetworkError                 NETWORK: no answer (connection refused, timeout, DNS)
    ├── AuthError                    AUTH_FAILED: the ID-token provider could not give a token
    ├── TokenInvalid                 TOKEN_INVALID: a lease token failed offline verification
    │   ├── TokenExpired             TOKEN_EXPIRED: genuine, but past exp + grace (+ skew)
    │   └── TrustNotPinned           TRUST_NOT_PINNED: offline verification asked, no trusted root pinned
    ├── NoLease                      NO_LEASE: nothing held / no stored session or borrow
    └── LeaseLost                    LEASE_LOST: the lease could not be kept
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

    def __str__(self) -> str:
        prefix = f"{self.status} {self.code}" if self.status else self.code
        return f"{prefix}: {self.message}"


class InvalidRequest(LicenseError):
    code, status = "INVALID_REQUEST", 400


class Unauthenticated(LicenseError):
    code, status = "UNAUTHENTICATED", 401


class Forbidden(LicenseError):
    code, status = "FORBIDDEN", 403


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
    """Every seat is taken: `seats_used`/`seats_max`, and `retry_after` seconds until the
    earliest lease ends (the server's Retry-After)."""

    code, status = "NO_SEAT_AVAILABLE", 409

    @property
    def _counts(self) -> dict[str, Any]:
        # NO_SEAT_AVAILABLE says `seats`; USER_SESSION_LIMIT says `sessions`.
        return self.details.get("seats") or self.details.get("sessions") or {}

    @property
    def seats_used(self) -> int | None:
        return self._counts.get("used")

    @property
    def seats_max(self) -> int | None:
        return self._counts.get("max")


class UserSessionLimit(NoSeatAvailable):
    code = "USER_SESSION_LIMIT"


class Gone(LicenseError):
    code, status = "GONE", 410


class LicenseExpired(Gone):
    code = "LICENSE_EXPIRED"


class SessionExpired(Gone):
    code = "SESSION_EXPIRED"


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


_BY_CODE: dict[str, type[LicenseError]] = {
    cls.code: cls
    for cls in (InvalidRequest, Unauthenticated, Forbidden, LicenseSuspended, BorrowNotAllowed, NotFound,
                LicenseNotFound, SessionNotFound, NoSeatAvailable, UserSessionLimit, Gone, LicenseExpired,
                SessionExpired, RateLimited, ServiceUnavailable)
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
