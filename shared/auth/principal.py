"""ID-token claims turned into the caller (shared.domain.Principal).

Claims are checked here, at the auth boundary, so nothing past it meets a malformed
identity: a uid that cannot be a Redis key part (control characters join uid and
hardware id inside Redis; a lone surrogate cannot be encoded) is refused, and a
`tenant` claim that is not a tenant id (a list, a number, "", "ab/cd") counts as no
tenant at all. An `admin` without a usable tenant administers nothing (it is refused
on every admin route); only the platform `owner` ever acts across tenants. A uid that
begins `key:` is a machine key's (shared/domain/machine_keys.py) and is refused in an ID
token: the seat scripts tell machines by it, and nobody may pose as a key's sessions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.domain.policies import CLAIM_NAME, RESERVED_CLAIMS
from shared.domain.principal import MACHINE_UID_PREFIX, ROLES, Principal
from shared.errors import Unauthenticated
from shared.ids import TENANT_ID

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _clean_text(value: Any, max_chars: int) -> bool:
    """A non-empty string of at most `max_chars`, no control character, encodable as UTF-8."""
    if not isinstance(value, str) or not 1 <= len(value) <= max_chars or _CONTROL.search(value):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def valid_uid(uid: Any) -> bool:
    """Firebase allows uids of up to 128 characters; ours must also be safe inside Redis keys."""
    return _clean_text(uid, 128)


_MAX_CUSTOM_CLAIMS = 32
_MAX_CLAIM_LIST = 100


def _custom_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The token's custom claims a seat-policy group may match: text, or lists of text
    (bounded; anything else is left out, as a claim no group can match)."""
    found: dict[str, Any] = {}
    for name, value in claims.items():
        if len(found) >= _MAX_CUSTOM_CLAIMS:
            break
        if not isinstance(name, str) or name in RESERVED_CLAIMS or not CLAIM_NAME.fullmatch(name):
            continue
        if _clean_text(value, 200):
            found[name] = value
        elif isinstance(value, list) and len(value) <= _MAX_CLAIM_LIST and all(_clean_text(v, 200) for v in value):
            found[name] = tuple(value)
    return found


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """The Principal of verified ID-token claims; Unauthenticated if the uid is unusable."""
    uid = claims.get("uid", claims.get("sub"))
    if not valid_uid(uid):
        raise Unauthenticated("the ID token's uid must be 1 to 128 characters with no control characters")
    if uid.startswith(MACHINE_UID_PREFIX):
        raise Unauthenticated(f"a uid beginning {MACHINE_UID_PREFIX!r} is a machine key's; an ID token cannot "
                              "carry one")
    tenant, role, email = claims.get("tenant"), claims.get("role"), claims.get("email")
    return Principal(
        uid=uid,
        email=email if _clean_text(email, 320) else None,
        email_verified=claims.get("email_verified") is True,
        tenant=tenant if isinstance(tenant, str) and TENANT_ID.fullmatch(tenant) else None,
        role=role if role in ROLES else None,
        claims=_custom_claims(claims),
    )
