"""License keys: readable, typo-checked, stored only as a hash.

Shape: ``CDT-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX`` in Crockford base32 (no I, L, O, U):
26 random characters (130 bits from the CSPRNG) and 2 check characters (10 bits of a
SHA-256 over the body), so 1023 in 1024 typos are caught before any lookup. Input is
forgiving the way Crockford intends: any case, hyphens and spaces ignored, O read as 0,
I and L read as 1.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "CDT"
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_FORGIVEN = str.maketrans({"O": "0", "I": "1", "L": "1"})
_BODY_LEN, _CHECK_LEN, _GROUP = 26, 2, 4


class MalformedKey(ValueError):
    """The text is not a license key of ours (wrong shape or failed checksum)."""


def _check_chars(body: str) -> str:
    bits = int.from_bytes(hashlib.sha256(f"{PREFIX}:{body}".encode()).digest()[:2], "big") >> 6
    return _ALPHABET[bits >> 5] + _ALPHABET[bits & 31]


def _format(chars: str) -> str:
    groups = [chars[i : i + _GROUP] for i in range(0, len(chars), _GROUP)]
    return "-".join([PREFIX, *groups])


def new_license_key() -> str:
    """A fresh key, to be shown once to its administrator and then forgotten."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_BODY_LEN))
    return _format(body + _check_chars(body))


def canonical_key(text: str) -> str:
    """The key in its one true spelling; raises MalformedKey with a helpful message."""
    compact = text.upper().replace("-", "").replace(" ", "").translate(_FORGIVEN)
    if compact.startswith(PREFIX):
        compact = compact[len(PREFIX) :]
    if len(compact) != _BODY_LEN + _CHECK_LEN or any(c not in _ALPHABET for c in compact):
        raise MalformedKey("this is not a license key: expected CDT- and 28 letters or digits")
    body, check = compact[:_BODY_LEN], compact[_BODY_LEN:]
    if _check_chars(body) != check:
        raise MalformedKey("license key checksum failed: check the key for a typo")
    return _format(compact)


def key_hash(canonical: str) -> str:
    """The only form a key is ever stored in: hex SHA-256 of its canonical spelling."""
    return hashlib.sha256(canonical.encode()).hexdigest()
