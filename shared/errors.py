"""Every failure the service reports, with its HTTP status and stable code.

    ServiceError                      (code, http_status; JSON envelope built by shared.http)
    ├── InvalidRequest                400 INVALID_REQUEST
    ├── Unauthenticated               401 UNAUTHENTICATED
    ├── Forbidden                     403 FORBIDDEN
    │   ├── LicenseSuspended          403 LICENSE_SUSPENDED
    │   └── BorrowNotAllowed          403 BORROW_NOT_ALLOWED
    ├── NotFound                      404 NOT_FOUND
    │   ├── LicenseNotFound           404 LICENSE_NOT_FOUND
    │   └── SessionNotFound           404 SESSION_NOT_FOUND
    ├── MethodNotAllowed              405 METHOD_NOT_ALLOWED
    ├── AlreadyExists                 409 ALREADY_EXISTS
    ├── NoSeatAvailable               409 NO_SEAT_AVAILABLE   (seats, Retry-After)
    │   └── UserSessionLimit          409 USER_SESSION_LIMIT  (sessions)
    ├── Gone                          410
    │   ├── LicenseExpired            410 LICENSE_EXPIRED
    │   └── SessionExpired            410 SESSION_EXPIRED
    ├── PayloadTooLarge               413 PAYLOAD_TOO_LARGE
    ├── UnsupportedMediaType          415 UNSUPPORTED_MEDIA_TYPE
    ├── RateLimited                   429 RATE_LIMITED        (Retry-After)
    └── BackendUnavailable            503 UNAVAILABLE         (Retry-After)
        ├── KmsIntegrityError         503 UNAVAILABLE         (CRC32C mismatch in transit)
        └── SeatTableRebuilding       503 UNAVAILABLE         (a license's seats, after a Redis loss)

Adapters translate library exceptions (redis-py, google-api-core) into the most
specific class here, at their boundary, with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A failure the caller is told about: status, code, message and details."""

    code = "INTERNAL"
    http_status = 500

    def __init__(self, message: str, *, retry_after_s: int | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s
        self.details = details

    def envelope(self) -> dict[str, Any]:
        """The JSON body of the error answer."""
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class InvalidRequest(ServiceError):
    """The request is malformed: bad JSON, wrong types, missing or oversized fields."""

    code, http_status = "INVALID_REQUEST", 400


class Unauthenticated(ServiceError):
    """No usable credential: missing, malformed, expired or forged token."""

    code, http_status = "UNAUTHENTICATED", 401


class Forbidden(ServiceError):
    """Authenticated, but this caller may not do this."""

    code, http_status = "FORBIDDEN", 403


class LicenseSuspended(Forbidden):
    """The license is suspended by its administrator."""

    code = "LICENSE_SUSPENDED"


class BorrowNotAllowed(Forbidden):
    """The license does not allow checking a seat out (its max_borrow_s is 0)."""

    code = "BORROW_NOT_ALLOWED"


class NotFound(ServiceError):
    """No such object (also what another tenant's object looks like)."""

    code, http_status = "NOT_FOUND", 404


class LicenseNotFound(NotFound):
    """No license has this key (or the key's checksum shows a typo)."""

    code = "LICENSE_NOT_FOUND"


class SessionNotFound(NotFound):
    """No session with this id was ever issued."""

    code = "SESSION_NOT_FOUND"


class MethodNotAllowed(ServiceError):
    """The function does not answer this HTTP method."""

    code, http_status = "METHOD_NOT_ALLOWED", 405


class AlreadyExists(ServiceError):
    """An object with this id exists already."""

    code, http_status = "ALREADY_EXISTS", 409


class NoSeatAvailable(ServiceError):
    """Every seat of the license is held by a live lease."""

    code, http_status = "NO_SEAT_AVAILABLE", 409


class UserSessionLimit(NoSeatAvailable):
    """The user already holds as many sessions of this license as it allows per user."""

    code = "USER_SESSION_LIMIT"


class GroupSeatLimit(NoSeatAvailable):
    """The caller's group already holds as many seats as the license's policy allows it."""

    code = "GROUP_SEAT_LIMIT"


class Gone(ServiceError):
    """The object existed but is no longer usable."""

    code, http_status = "GONE", 410


class TicketGone(Gone):
    """The caller's queue ticket lapsed (not polled in time, or its held seat not claimed),
    was cancelled, or was never this caller's: queue again."""

    code = "TICKET_GONE"


class LicenseExpired(Gone):
    """The license's term has ended."""

    code = "LICENSE_EXPIRED"


class SessionExpired(Gone):
    """The session's lease ran out or it was released; the client must re-acquire."""

    code = "SESSION_EXPIRED"


class PayloadTooLarge(ServiceError):
    """The request body is over the size limit."""

    code, http_status = "PAYLOAD_TOO_LARGE", 413


class UnsupportedMediaType(ServiceError):
    """The request body is not declared as JSON."""

    code, http_status = "UNSUPPORTED_MEDIA_TYPE", 415


class RateLimited(ServiceError):
    """Too many requests from this caller; retry after the stated delay."""

    code, http_status = "RATE_LIMITED", 429


class BackendUnavailable(ServiceError):
    """Redis, Firestore or KMS cannot be reached; nothing was changed."""

    code, http_status = "UNAVAILABLE", 503

    def __init__(self, backend: str, *, retry_after_s: int = 2):
        super().__init__(
            f"{backend} is unavailable; retry shortly", retry_after_s=retry_after_s, backend=backend
        )


class KmsIntegrityError(BackendUnavailable):
    """Cloud KMS data failed its CRC32C check in transit (Google advises a retry)."""

    def __init__(self, what: str):
        super().__init__("kms")
        self.message = f"kms {what} failed its integrity check; retry shortly"


class SeatTableRebuilding(BackendUnavailable):
    """Another instance is rebuilding the license's seat table after Redis lost data;
    nothing is granted until it is complete (seconds)."""

    def __init__(self) -> None:
        super().__init__("redis", retry_after_s=1)
        self.message = "the license's seats are being restored after a Redis failure; retry in a second"
        self.details["rebuilding"] = True
