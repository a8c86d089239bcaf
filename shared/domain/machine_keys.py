"""Machine keys: credentials for build runners and CI jobs, issued by a tenant's administrator.

A person's Firebase ID token lives an hour and belongs to a person; a build farm needs a
credential that is neither. A machine key is a named, revocable API key of one tenant,
scoped to some of its licenses, in one of two modes:
    seat      acquire, heartbeat, borrow, release and validate those licenses. On a license
              with a CI pool (`ci_seats`, an entitlement the vendor sets) a machine takes a
              pool seat and never a user's seat; without one, an ordinary seat under the
              ordinary rules (PostSharp's build-server exemption is the model for the pool).
    validate  validate only: takes no seat at all.
The seat functions accept it as `Authorization: Bearer ck_...` in place of an ID token; the
principal is then `key:<key id>` (Principal.machine), so its leases are keyed per key and
hardware id, and the audit log names the key (actor `key:<id>`, its name in the details).

Shape: ``ck_<20 characters: the key id's>_<43 characters: 256 random bits, base64url>``.
The key carries its id, so checking one is a read of one document by id and a
constant-time comparison of hashes, with no index to keep. Stored is only the SHA-256 of
the whole key: with 256 random bits there is nothing to guess from, so a slow password
hash would add cost and no safety (license keys are stored the same way).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from shared.domain.principal import MACHINE_UID_PREFIX, MachineGrant
from shared.domain.times import rfc3339

PREFIX = "ck_"
KEY_ID = re.compile(r"mk_([0-9a-z]{20})")
"""A machine key's id (not secret: listed, and in the audit log)."""
_KEY = re.compile(r"ck_([0-9a-z]{20})_([A-Za-z0-9_-]{43})")
MODES = ("seat", "validate")
REVOCATION_BOUND_S = 30
"""A revoked key is refused by every instance at most this long after its revocation (each
caches what it read of a key no longer: shared/auth/machine_keys.py)."""
NAME_MAX = 100
MAX_LICENSES = 100


def looks_like_machine_key(token: str) -> bool:
    """A bearer token meant as a machine key (an ID token is a JWT: it never starts so)."""
    return token.startswith(PREFIX)


def new_machine_key(key_id: str) -> str:
    """The secret of key `key_id`: shown once to the administrator who made it, then forgotten."""
    match = KEY_ID.fullmatch(key_id)
    if match is None:
        raise ValueError(f"not a machine key id: {key_id!r}")
    return f"{PREFIX}{match.group(1)}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    """The id a presented key names, or None when it is not shaped like one of ours."""
    match = _KEY.fullmatch(key)
    return f"mk_{match.group(1)}" if match else None


def machine_key_hash(key: str) -> str:
    """The only form a machine key is stored in: hex SHA-256 of the key as shown."""
    return hashlib.sha256(key.encode()).hexdigest()


def machine_uid(key_id: str) -> str:
    """The uid a machine key acts as (leases, sessions, audit actor)."""
    return MACHINE_UID_PREFIX + key_id


@dataclass(frozen=True)
class MachineKey:
    """A machine key as the durable record holds it (never the key itself)."""

    id: str
    tenant_id: str
    name: str
    licenses: tuple[str, ...]
    mode: str
    key_hash: str
    created_by: str
    created_ms: int
    last_used_ms: int | None = None
    """Recorded at most once a minute per key (shared/auth/machine_keys.py), not per request."""
    revoked_ms: int | None = None

    def opens(self, key: str) -> bool:
        return hmac.compare_digest(self.key_hash, machine_key_hash(key))

    @property
    def revoked(self) -> bool:
        return self.revoked_ms is not None

    def grant(self) -> MachineGrant:
        return MachineGrant(key_id=self.id, name=self.name, licenses=self.licenses, mode=self.mode)

    def admin_view(self) -> dict[str, Any]:
        """What administrators of its tenant see (never the key or its hash)."""
        return {
            "id": self.id,
            "name": self.name,
            "tenant": self.tenant_id,
            "licenses": list(self.licenses),
            "mode": self.mode,
            "uid": machine_uid(self.id),
            "created_by": self.created_by,
            "created_at": rfc3339(self.created_ms),
            "last_used_at": rfc3339(self.last_used_ms),
            "revoked_at": rfc3339(self.revoked_ms),
        }
