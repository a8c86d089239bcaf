"""Offline verification of signed usage statements: a month's seat usage of a license, as the server signed it.

    statement     header {alg: ES256 | EdDSA, typ: "usage-statement+jwt", kid: delegate kid, dlg: certificate}
                  claims {iss, iat, sub: license id, tenant, month: "YYYY-MM",
                          from: "YYYY-MM-01T00:00:00Z", to: the first instant of the next month,
                          final: false while the month is not over (figures through `through`),
                          through: the end of the last closed hour included (RFC 3339, Z),
                          max_seats, figures {peak, p95, average, seat_hours, hours_at_full, denials,
                          overage_peak, grants, right_size_99},
                          series {granularity: "hour", count, sha256, canonical: "json-lines-v1"}}

A statement is signed exactly like a lease token (tokens.py: the delegation certificate
under a root key of the jwks, pinned with `trusted_roots`; the delegate key certified by
its thumbprint), but it is a record, not a credential: it has no `exp`, and it is
verified months after it was issued, long after its certificate expired. So the current
time is checked only so far as the statement was not issued in the future (beyond
CLOCK_SKEW_S); its `iat` must lie inside its certificate's validity [iat, exp] (the
delegate key signed it while certified).

The hourly series the figures come from (`GET admin/licenses/{id}/report?granularity=hour
&from=<from>&to=<through>`) is bound by its row count and `series_sha256` of its rows
("json-lines-v1": each row as compact JSON with sorted keys, UTF-8, newline-terminated).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from coditect_license.errors import TokenInvalid
from coditect_license.tokens import (
    CLOCK_SKEW_S,
    _number,
    _verified_delegated_jws,
    keys_by_kid,
    pinned_root_keys,
    trusted_root_set,
)

STATEMENT_TYP = "usage-statement+jwt"
SERIES_CANONICAL = "json-lines-v1"
SERIES_GRANULARITY = "hour"
INT_FIGURES = ("peak", "p95", "hours_at_full", "denials", "overage_peak", "grants", "right_size_99")
NUMBER_FIGURES = ("average", "seat_hours")

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
_RFC3339_Z = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?Z")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def series_sha256(rows: Iterable[Mapping[str, Any]]) -> str:
    """The "json-lines-v1" hash of a report's series rows, in order (hex SHA-256).

    Each row is `json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`,
    UTF-8 encoded and followed by a newline; the hash is over their concatenation."""
    digest = hashlib.sha256()
    for row in rows:
        line = json.dumps(dict(row), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def _root_keys(keys_or_jwks: Mapping[str, Any], pins: frozenset[str] | None) -> Mapping[str, Mapping[str, Any]]:
    """Root keys by kid, from a jwks document ({"keys": [...]}) or a kid -> JWK mapping as given.

    A document's keys are taken as `JwksCache` takes them: with pins, only the pinned ones,
    each under its own thumbprint (the kid a document states plays no part)."""
    if not isinstance(keys_or_jwks, Mapping):
        raise TypeError("keys_or_jwks is a jwks document or a mapping of kid to JWK")
    if isinstance(keys_or_jwks.get("keys"), list):
        return pinned_root_keys(keys_or_jwks, pins) if pins is not None else keys_by_kid(keys_or_jwks)
    return keys_or_jwks


def _string(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise TokenInvalid(f"malformed usage statement: claim {name!r} must be a non-empty string")
    return value


def _integer(claims: Mapping[str, Any], name: str, where: str = "claim") -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TokenInvalid(f"malformed usage statement: {where} {name!r} must be an integer >= 0")
    return value


def _instant(claims: Mapping[str, Any], name: str) -> datetime:
    value = _string(claims, name)
    match = _RFC3339_Z.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        return datetime.fromisoformat(match.group(1) + (match.group(2) or "")).replace(tzinfo=timezone.utc)
    except ValueError:
        raise TokenInvalid(f"malformed usage statement: claim {name!r} is not an RFC 3339 UTC time "
                           f"(YYYY-MM-DDTHH:MM:SSZ): {value!r}") from None


def _check_period(claims: Mapping[str, Any]) -> None:
    """`month` YYYY-MM; `from` and `to` its first instant and the next month's; `through` between them."""
    month = _string(claims, "month")
    match = _MONTH.fullmatch(month)
    if match is None:
        raise TokenInvalid(f"malformed usage statement: claim 'month' is not YYYY-MM: {month!r}")
    year, number = int(match.group(1)), int(match.group(2))
    following = f"{year + number // 12:04d}-{number % 12 + 1:02d}"
    for name, expected in (("from", f"{month}-01T00:00:00Z"), ("to", f"{following}-01T00:00:00Z")):
        if claims.get(name) != expected:
            raise TokenInvalid(f"malformed usage statement: claim {name!r} of month {month} must be {expected!r}, "
                               f"not {claims.get(name)!r}")
    if not isinstance(claims.get("final"), bool):
        raise TokenInvalid("malformed usage statement: claim 'final' must be true or false")
    through = _instant(claims, "through")
    if not _instant(claims, "from") <= through <= _instant(claims, "to"):
        raise TokenInvalid(f"malformed usage statement: 'through' ({claims['through']}) is outside the month "
                           f"[{claims['from']}, {claims['to']}]")


def _check_figures(claims: Mapping[str, Any]) -> None:
    figures = claims.get("figures")
    if not isinstance(figures, dict):
        raise TokenInvalid("malformed usage statement: claim 'figures' must be an object")
    for name in INT_FIGURES:
        _integer(figures, name, "figure")
    for name in NUMBER_FIGURES:
        value = figures.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise TokenInvalid(f"malformed usage statement: figure {name!r} must be a number >= 0")


def _check_series_claim(claims: Mapping[str, Any]) -> dict[str, Any]:
    series = claims.get("series")
    if not isinstance(series, dict):
        raise TokenInvalid("malformed usage statement: claim 'series' must be an object")
    if series.get("granularity") != SERIES_GRANULARITY:
        raise TokenInvalid(f"malformed usage statement: series granularity {series.get('granularity')!r} "
                           f"is not {SERIES_GRANULARITY!r}")
    if series.get("canonical") != SERIES_CANONICAL:
        raise TokenInvalid(f"unsupported usage statement: series canonical form {series.get('canonical')!r} "
                           f"is not {SERIES_CANONICAL!r}")
    _integer(series, "count", "series")
    if not isinstance(series.get("sha256"), str) or not _SHA256_HEX.fullmatch(series["sha256"]):
        raise TokenInvalid("malformed usage statement: series 'sha256' must be 64 lowercase hex digits")
    return series


def _series_rows(series: Any) -> list[Mapping[str, Any]]:
    """The rows of `series`: a list of row objects, or a report object holding them under "series"."""
    rows = series.get("series") if isinstance(series, Mapping) else series
    if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
        raise ValueError("series must be a list of row objects, or a report object with a 'series' list of them")
    return rows


def verify_statement(statement: str, keys_or_jwks: Mapping[str, Any], *, trusted_roots: Iterable[str] | None = None,
                     series: Any = None, now: float | None = None) -> dict[str, Any]:
    """Verify a signed usage statement offline; its claims, or TokenInvalid saying why not.

    Args:
        keys_or_jwks: the root keys, as a jwks document (`{"keys": [...]}`, e.g. the
            server's `GET jwks`) or as `keys_by_kid` / `JwksCache.keys()` return them
            (kid -> JWK). Without `trusted_roots` they are the trust anchors as given; with
            it, they only supply key material (as for `verify_lease_token`).
        trusted_roots: RFC 7638 thumbprints of the root keys to accept.
        series: the hourly series the statement's figures come from: a list of row
            objects, or the report object (`GET admin/licenses/{id}/report?granularity=hour
            &from=<from>&to=<through>`) holding them under "series". When given, its row
            count and `series_sha256` must be the statement's (TokenInvalid naming which not).
        now: this machine's time (Unix seconds; default: the clock), only to refuse a
            statement issued in the future (beyond CLOCK_SKEW_S). A statement's age does
            not matter: it stays verifiable after its certificate expired.

    Raises:
        TokenInvalid: the signature, the chain, the claims or the series do not hold.
        ValueError: `trusted_roots` (see `trusted_root_set`) or `series` is malformed.
    """
    pins = trusted_root_set(trusted_roots)
    now = time.time() if now is None else now
    claims, cert, _root_kid = _verified_delegated_jws(statement, _root_keys(keys_or_jwks, pins), pins,
                                                      typ=STATEMENT_TYP, what="usage statement")
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int):
        raise TokenInvalid("malformed usage statement: claim 'iat' must be an integer (Unix seconds)")
    cert_iat, cert_exp = _number(cert, "iat"), _number(cert, "exp")
    if not cert_iat <= iat <= cert_exp:
        raise TokenInvalid(f"usage statement issued outside its certificate's validity (iat {iat}, certificate "
                           f"valid [{cert_iat}, {cert_exp}])")
    if cert.get("iss") != claims.get("iss"):
        raise TokenInvalid("statement and certificate issuers differ")
    _string(claims, "iss")
    if iat > now + CLOCK_SKEW_S:
        raise TokenInvalid("usage statement issued in the future (check this machine's clock)")
    _string(claims, "sub")
    _string(claims, "tenant")
    _check_period(claims)
    _integer(claims, "max_seats")
    _check_figures(claims)
    signed = _check_series_claim(claims)

    if series is not None:
        rows = _series_rows(series)
        if len(rows) != signed["count"]:
            raise TokenInvalid(f"series count mismatch: the statement covers {signed['count']} hourly rows, "
                               f"the series given has {len(rows)}")
        digest = series_sha256(rows)
        if digest != signed["sha256"]:
            raise TokenInvalid(f"series sha256 mismatch: the rows given hash to {digest}, the statement signed "
                               f"{signed['sha256']} (a row was changed, added, removed or reordered)")
    return dict(claims)


__all__ = ["verify_statement", "series_sha256", "STATEMENT_TYP", "SERIES_CANONICAL"]
