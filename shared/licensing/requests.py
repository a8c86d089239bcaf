"""Request bodies of the seat operations (openapi.yaml), validated strictly.

Strict mode: a number where a string is expected is a 400, not silently coerced.
Unknown fields are ignored so older servers accept newer clients.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.domain import LicenseBounds

# No control characters: hardware ids are joined with a newline inside Redis keys.
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class ClientInfo(_Body):
    # Stored and shown to administrators (CLI, console): no control characters, which a
    # terminal would obey (escape sequences) and a log line would split on.
    version: str = Field(default="", max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")
    hostname: str = Field(default="", max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")


_TICKET = Field(default=None, pattern=r"^lic_[0-9a-z]{20}\.q\.[A-Za-z0-9_-]{22}$")


class AcquireRequest(_Body):
    license_key: str = Field(min_length=1, max_length=128)
    hardware_id: str = Field(min_length=1, max_length=128, pattern=_PRINTABLE)
    client: ClientInfo | None = None
    wait: bool = False
    """With no seat free, take a place in the license's wait queue (202 and a ticket)."""
    ticket: str | None = _TICKET
    """A ticket this caller holds: a poll, which keeps it alive and converts it to a
    session (201) once a seat is held for it."""


# A lease token (JWS compact: header.payload.signature with its certificate in the header).
_JWS_COMPACT = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
_LEASE_TOKEN = Field(default=None, min_length=1, max_length=8192, pattern=_JWS_COMPACT)


class SessionRequest(_Body):
    session_id: str = Field(min_length=1, max_length=128)
    lease_token: str | None = _LEASE_TOKEN
    """The session's latest lease token (heartbeat): after a Redis loss it proves the lease
    was still valid, so a restored lease is extended rather than revived."""


class ReleaseRequest(_Body):
    """Release a session, or leave the wait queue (exactly one of the two)."""

    session_id: str | None = Field(default=None, min_length=1, max_length=128)
    ticket: str | None = _TICKET


class ValidateRequest(_Body):
    license_key: str = Field(min_length=1, max_length=128)


class BorrowRequest(_Body):
    session_id: str = Field(min_length=1, max_length=128)
    duration_s: int = Field(ge=1, le=LicenseBounds.MAX_BORROW_S.high)
    lease_token: str | None = _LEASE_TOKEN
