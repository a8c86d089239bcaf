"""Lease tokens and usage statements signed by hand with a test's own keys (imported by
name: tests/client is on sys.path).

A `Root` plays a KMS root key nobody pinned (a forger's, or a test's own with its own
pins); `lease_token` and `statement` build the whole chain: a delegation certificate
under the root, and a JWS signed by the certified delegate.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from coditect_license.tokens import jwk_thumbprint

ISSUER = "https://license.coditect.dev"
_OMIT = object()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def json_segment(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def segments(token: str):
    """(header, claims, signature segment) of a compact JWS, unverified."""
    head, body, sig = token.split(".")
    return json.loads(base64.urlsafe_b64decode(_padded(head))), json.loads(base64.urlsafe_b64decode(_padded(body))), sig


def _padded(segment: str) -> str:
    return segment + "=" * (-len(segment) % 4)


def sign_es256(key: ec.EllipticCurvePrivateKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = f"{json_segment(header)}.{json_segment(claims)}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": b64(numbers.x.to_bytes(32, "big")),
           "y": b64(numbers.y.to_bytes(32, "big"))}
    return {**jwk, "kid": jwk_thumbprint(jwk), "alg": "ES256", "use": "sig"}


@dataclass(frozen=True)
class Root:
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def new(cls) -> Root:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def jwk(self) -> dict[str, str]:
        return public_jwk(self.key)

    @property
    def kid(self) -> str:
        return self.jwk["kid"]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}


def _delegated(root: Root, typ: str, claims: dict[str, Any], *, cert_iat: int, cert_exp: int,
               lease_max_s: Any, issuer: str) -> str:
    """A JWS of type `typ` with `claims`, signed by a fresh delegate that `root` certified."""
    delegate = ec.generate_private_key(ec.SECP256R1())
    delegate_jwk = public_jwk(delegate)
    certificate_claims: dict[str, Any] = {"iss": issuer, "sub": delegate_jwk["kid"], "jwk": delegate_jwk,
                                          "iat": cert_iat, "exp": cert_exp}
    if lease_max_s is not _OMIT:
        certificate_claims["lease_max_s"] = lease_max_s
    certificate = sign_es256(root.key, {"alg": "ES256", "kid": root.kid, "typ": "dlg+jwt"}, certificate_claims)
    return sign_es256(delegate, {"alg": "ES256", "typ": typ, "kid": delegate_jwk["kid"], "dlg": certificate}, claims)


def lease_token(root: Root, claims: dict[str, Any], *, cert_iat: int, cert_exp: int,
                lease_max_s: Any = _OMIT, issuer: str = ISSUER) -> str:
    """A lease token with `claims`, signed by a fresh delegate that `root` certified.

    `lease_max_s` is left out of the certificate unless given (any value, to test refusals)."""
    return _delegated(root, "lease+jwt", claims, cert_iat=cert_iat, cert_exp=cert_exp, lease_max_s=lease_max_s,
                      issuer=issuer)


def statement(root: Root, claims: dict[str, Any], *, cert_iat: int, cert_exp: int, lease_max_s: Any = 3600,
              issuer: str = ISSUER, typ: str = "usage-statement+jwt") -> str:
    """A usage statement with `claims`, signed by a fresh delegate that `root` certified
    (`typ` other than the statement's, to test refusals)."""
    return _delegated(root, typ, claims, cert_iat=cert_iat, cert_exp=cert_exp, lease_max_s=lease_max_s,
                      issuer=issuer)


def lease_claims(*, iat: int, exp: int, hardware_id: str = "hw-test", grace: int = 0, borrowed: bool = False,
                 tier: str = "pro", session_id: str = "sess-hand-signed", license_id: str = "lic_hand",
                 features: list | None = None) -> dict[str, Any]:
    return {"iss": ISSUER, "sub": session_id, "lic": license_id, "ten": "t-hand", "uid": "someone",
            "hw": hardware_id, "tier": tier, "features": list(features or []), "iat": iat, "exp": exp,
            "grace": grace, "bor": borrowed}


def statement_claims(*, iat: int, month: str = "2025-03", final: bool = True, through: str | None = None,
                     series_count: int = 0, series_sha256: str = "0" * 64, license_id: str = "lic_hand",
                     **figures: Any) -> dict[str, Any]:
    """A usage statement's claims for `month` (YYYY-MM; `to` computed), figures overridable by name."""
    year, number = int(month[:4]), int(month[5:])
    to = f"{year + number // 12:04d}-{number % 12 + 1:02d}-01T00:00:00Z"
    return {"iss": ISSUER, "iat": iat, "sub": license_id, "tenant": "t-hand", "month": month,
            "from": f"{month}-01T00:00:00Z", "to": to, "final": final, "through": through or to, "max_seats": 10,
            "figures": {"peak": 9, "p95": 8, "average": 4.25, "seat_hours": 3162.0, "hours_at_full": 0,
                        "denials": 3, "overage_peak": 0, "grants": 420, "right_size_99": 9, **figures},
            "series": {"granularity": "hour", "count": series_count, "sha256": series_sha256,
                       "canonical": "json-lines-v1"}}
