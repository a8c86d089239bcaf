"""Identifiers: random, URL-safe, and shaped so each one says what it is.

A session id embeds its license id (``<license_id>.<random>``): heartbeat and release
carry only the session id, and this lets them find the license's Redis slot with no
lookup. License ids never contain '.', '{' or '}' (the Redis hash-tag delimiters).
"""

from __future__ import annotations

import re
import secrets
from typing import Protocol

_LOWER_BASE32 = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford: no i, l, o, u
# Use with fullmatch (a bare `$` would also accept a trailing newline).
LICENSE_ID = re.compile(r"lic_[0-9a-z]{20}")
TENANT_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
SESSION_ID = re.compile(r"(lic_[0-9a-z]{20})\.([A-Za-z0-9_-]{22})")
TICKET_ID = re.compile(r"(lic_[0-9a-z]{20})\.q\.([A-Za-z0-9_-]{22})")
"""A place in a license's wait queue: ``<license_id>.q.<random>``."""
MACHINE_KEY_ID = re.compile(r"mk_[0-9a-z]{20}")
"""A machine key's id (shared/domain/machine_keys.py: the key itself carries it)."""
WEBHOOK_ID = re.compile(r"wh_[0-9a-z]{20}")
"""A webhook endpoint's id (shared/domain/webhook_endpoints.py)."""


class IdGenerator(Protocol):
    def license_id(self) -> str: ...

    def session_id(self, license_id: str) -> str: ...

    def event_id(self) -> str: ...


def _random_base32(length: int) -> str:
    return "".join(secrets.choice(_LOWER_BASE32) for _ in range(length))


class RandomIds:
    """CSPRNG identifiers (100 bits for licenses, 128 bits for sessions)."""

    def license_id(self) -> str:
        return "lic_" + _random_base32(20)

    def session_id(self, license_id: str) -> str:
        return f"{license_id}.{secrets.token_urlsafe(16)}"

    def event_id(self) -> str:
        return "evt_" + _random_base32(24)


def new_machine_key_id() -> str:
    return "mk_" + _random_base32(20)


def new_webhook_id() -> str:
    return f"wh_{_random_base32(20)}"


def new_ticket_id(license_id: str) -> str:
    return f"{license_id}.q.{secrets.token_urlsafe(16)}"


def license_id_of_ticket(ticket_id: str) -> str | None:
    match = TICKET_ID.fullmatch(ticket_id)
    return match.group(1) if match else None


def license_id_of_session(session_id: str) -> str | None:
    """The license a session id belongs to, or None when it is not one of ours."""
    match = SESSION_ID.fullmatch(session_id)
    return match.group(1) if match else None
