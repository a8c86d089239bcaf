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


class AcquireRequest(_Body):
    license_key: str = Field(min_length=1, max_length=128)
    hardware_id: str = Field(min_length=1, max_length=128, pattern=_PRINTABLE)
    client: ClientInfo | None = None


# A lease token (JWS compact: header.payload.signature with its certificate in the header).
_JWS_COMPACT = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
_LEASE_TOKEN = Field(default=None, min_length=1, max_length=8192, pattern=_JWS_COMPACT)


class SessionRequest(_Body):
    session_id: str = Field(min_length=1, max_length=128)
    lease_token: str | None = _LEASE_TOKEN
    """The session's latest lease token (heartbeat): after a Redis loss it proves the lease
    was still valid, so a restored lease is extended rather than revived."""


class ValidateRequest(_Body):
    license_key: str = Field(min_length=1, max_length=128)


class BorrowRequest(_Body):
    session_id: str = Field(min_length=1, max_length=128)
    duration_s: int = Field(ge=1, le=LicenseBounds.MAX_BORROW_S.high)
    lease_token: str | None = _LEASE_TOKEN
