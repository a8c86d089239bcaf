"""Verifying the webhooks the license server sends a tenant's endpoint.

    Coditect-Webhook-Id:         <event id>          the body's "id"
    Coditect-Webhook-Type:       <type>              the body's "type"
    Coditect-Webhook-Timestamp:  <unix seconds>      when this attempt was signed
    Coditect-Webhook-Signature:  v1=<hex>[,v1=<hex>] one per secret of the endpoint valid now

    <hex> = lowercase hex HMAC-SHA256(key = the endpoint's secret as shown, "whsec_..." included,
                                     message = <timestamp> "." <the raw body bytes>)

During a secret's rotation the server signs with the new and the old secret (two `v1=`
entries), so a receiver holding either verifies; `secrets` may list both while it switches.
A delivery verifies when one `v1=` entry matches one secret (compared in constant time;
entries of other schemes are skipped) and its timestamp lies within `tolerance_s` of this
machine's clock (the timestamp is signed: a captured delivery cannot be replayed later).
The id and type headers are not signed; when present they must be the body's.

The server's implementation of the same scheme is shared/domain/webhooks.py; this one is
written apart from it (the SDK depends on nothing of the server's), and the tests sign
with the server's and verify with this one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from coditect_license.errors import WebhookInvalid

ID_HEADER = "Coditect-Webhook-Id"
TYPE_HEADER = "Coditect-Webhook-Type"
TIMESTAMP_HEADER = "Coditect-Webhook-Timestamp"
SIGNATURE_HEADER = "Coditect-Webhook-Signature"
TOLERANCE_S = 300

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


def _header(headers: Mapping[str, str], name: str, *, required: bool = True) -> str | None:
    """Header `name`, whatever the case of the names in `headers` (a dict, Flask's
    `request.headers`, anything with `items()`)."""
    wanted = name.lower()
    found = [value for key, value in headers.items() if isinstance(key, str) and key.lower() == wanted]
    if not found:
        if required:
            raise WebhookInvalid(f"missing header {name}", reason="missing_header")
        return None
    if len(set(found)) > 1:
        raise WebhookInvalid(f"header {name} given more than once, with different values", reason="malformed_header")
    if not isinstance(found[0], str):
        raise WebhookInvalid(f"header {name} is not text", reason="malformed_header")
    return found[0].strip()


def _v1_signatures(value: str) -> list[str]:
    signatures = []
    for entry in value.split(","):
        scheme, equals, digest = entry.strip().partition("=")
        if not equals or not scheme or not digest:
            raise WebhookInvalid(f"header {SIGNATURE_HEADER}: entry {entry.strip()!r} is not scheme=value",
                                 reason="malformed_header")
        if scheme == "v1":
            if not _HEX_SHA256.fullmatch(digest.lower()):
                raise WebhookInvalid(f"header {SIGNATURE_HEADER}: a v1 signature is 64 hex digits",
                                     reason="malformed_header")
            signatures.append(digest.lower())
    if not signatures:
        raise WebhookInvalid(f"header {SIGNATURE_HEADER} has no v1 signature", reason="malformed_header")
    return signatures


def _secret_list(secrets: str | Sequence[str]) -> list[str]:
    listed = [secrets] if isinstance(secrets, str) else list(secrets)
    if not listed or not all(isinstance(s, str) and s for s in listed):
        raise ValueError("secrets: the endpoint's secret (whsec_...), or a list of them, each a non-empty string")
    return listed


def verify_webhook(body: bytes, headers: Mapping[str, str], secrets: str | Sequence[str], *,
                   tolerance_s: int = TOLERANCE_S, now: float | None = None) -> dict[str, Any]:
    """Verify a webhook delivery; its parsed body (id, type, time, tenant, license, data).

    Args:
        body: the request body exactly as received (Flask: `request.get_data()`); parsed
            and re-serialised JSON no longer matches the signature.
        headers: the request's headers; names in any case.
        secrets: the endpoint's secret, or several (while switching to a rotated one: the
            new and the old).
        tolerance_s: how far the signed timestamp may lie from `now`, either way.
        now: this machine's time (Unix seconds; default: the clock).

    Raises:
        WebhookInvalid: it does not verify; `reason` says what failed. Answer with a 4xx.
        TypeError, ValueError: `body` is not bytes, no secret is given, `tolerance_s` < 0
            (the receiver's mistake, not the sender's).
    """
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError("body must be the raw request bytes as received (not text, not parsed JSON)")
    body = bytes(body)
    keys = _secret_list(secrets)
    if tolerance_s < 0:
        raise ValueError("tolerance_s must be >= 0")
    now = time.time() if now is None else now

    stamp = _header(headers, TIMESTAMP_HEADER) or ""
    if not _TIMESTAMP.fullmatch(stamp):
        raise WebhookInvalid(f"header {TIMESTAMP_HEADER} is not Unix seconds: {stamp!r}", reason="malformed_header")
    given = _v1_signatures(_header(headers, SIGNATURE_HEADER) or "")
    signed = stamp.encode() + b"." + body
    expected = [hmac.new(key.encode(), signed, hashlib.sha256).hexdigest() for key in keys]
    if not any(hmac.compare_digest(e, g) for e in expected for g in given):
        raise WebhookInvalid("no signature matches the body and timestamp with the secret"
                             f"{'s' if len(keys) > 1 else ''} given", reason="no_matching_signature")
    skew = abs(now - int(stamp))
    if skew > tolerance_s:
        raise WebhookInvalid(f"signed at {stamp}, {skew:.0f} s from this machine's clock: more than the "
                             f"{tolerance_s} s tolerated (a replay, or a clock that is off)",
                             reason="timestamp_out_of_tolerance")

    try:
        event = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WebhookInvalid("the body is not UTF-8 JSON", reason="malformed_body") from None
    if not isinstance(event, dict):
        raise WebhookInvalid("the body is not a JSON object", reason="malformed_body")
    for name, field in ((ID_HEADER, "id"), (TYPE_HEADER, "type")):
        stated = _header(headers, name, required=False)
        if stated is not None and stated != event.get(field):
            raise WebhookInvalid(f"header {name} ({stated!r}) is not the body's {field} ({event.get(field)!r})",
                                 reason="header_mismatch")
    return event


__all__ = ["verify_webhook", "ID_HEADER", "TYPE_HEADER", "TIMESTAMP_HEADER", "SIGNATURE_HEADER", "TOLERANCE_S"]
