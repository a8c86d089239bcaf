"""Offline verification of lease tokens (KMS-rooted delegation) with plain `cryptography`.

    lease token   header {alg: ES256 | EdDSA, typ: "lease+jwt", kid: delegate kid, dlg: certificate}
                  claims {iss, sub: session, lic, ten, uid, hw, tier, features, iat, exp,
                          grace?: offline seconds after exp, bor?: true on a borrow token}
    certificate   header {alg: ES256 | RS256 | PS256 | EdDSA, typ: "dlg+jwt", kid: root kid in jwks}
                  claims {iss, sub: delegate kid, jwk: delegate public JWK, iat, exp,
                          lease_max_s: how far past its exp a token it roots may stay valid}

A token is accepted when: the certificate's signature verifies with the root key of its
`kid` (and, with `trusted_roots`, that key's own RFC 7638 thumbprint is pinned: the
`kid` a key document states is never trusted); the delegate JWK's thumbprint is its
kid, which is the certificate's `sub` and the token's `kid`; the token's signature
verifies with the delegate key; the token's `iat` lies inside the certificate's validity
(both stamped by the same server clock, so no tolerance); the token stays inside its
certificate's bound:

    iat <= exp   and   exp + grace <= certificate exp + certificate lease_max_s

(a certificate without an integer `lease_max_s` >= 0 is malformed), so a leaked
delegate key, which lives an hour, cannot mint a lease valid for years; and the token
was not issued in the future and `now < exp + grace`, both with CLOCK_SKEW_S of
tolerance for this machine's clock. Nothing here touches the network; `JwksCache`
(jwks.py) supplies the keys. Usage statements (statements.py) are signed through the same
chain (`_verified_delegated_jws`), with their own rules of time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from coditect_license.errors import TokenExpired, TokenInvalid

# Tolerance for this machine's clock against the server's, applied to `iat` (not in the
# future) and to `exp + grace` (not yet past). Stated in the README.
CLOCK_SKEW_S = 60
_MAX_TOKEN_CHARS = 16384
# An RFC 7638 thumbprint as the server publishes it: SHA-256, base64url without padding.
_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")


def b64url_decode(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (ValueError, TypeError):
        raise TokenInvalid("malformed base64url") from None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_segment(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(segment))
    except ValueError:
        raise TokenInvalid("a JWS segment is not JSON") from None
    if not isinstance(value, dict):
        raise TokenInvalid("a JWS segment is not a JSON object")
    return value


def split(compact: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature) of a compact JWS, unverified."""
    if not isinstance(compact, str) or len(compact) > _MAX_TOKEN_CHARS:
        raise TokenInvalid("not a compact JWS")
    parts = compact.strip().split(".")
    if len(parts) != 3 or not all(parts):
        raise TokenInvalid("not a compact JWS (header.payload.signature)")
    header, claims = _json_segment(parts[0]), _json_segment(parts[1])
    return header, claims, f"{parts[0]}.{parts[1]}".encode(), b64url_decode(parts[2])


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a JWS without checking anything (for display only)."""
    return split(token)[1]


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of a public JWK."""
    members = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}.get(
        str(jwk.get("kty")))
    if members is None or any(not isinstance(jwk.get(m), str) for m in members):
        raise TokenInvalid("unsupported or incomplete JWK")
    required = {m: jwk[m] for m in members}
    return b64url(hashlib.sha256(json.dumps(required, separators=(",", ":"), sort_keys=True).encode()).digest())


def trusted_root_set(trusted_roots: Iterable[str] | None) -> frozenset[str] | None:
    """The pinned root thumbprints as a set; None when nothing is pinned.

    Raises ValueError for one string instead of a collection, an empty collection (pass
    None to pin nothing), or an entry that is not a SHA-256 RFC 7638 thumbprint."""
    if trusted_roots is None:
        return None
    if isinstance(trusted_roots, (str, bytes)):
        raise ValueError("trusted_roots is a collection of thumbprints, not a single string")
    pins = frozenset(trusted_roots)
    if not pins:
        raise ValueError("trusted_roots names no key (pass None to run without pinned roots)")
    for pin in pins:
        if not isinstance(pin, str) or not _THUMBPRINT.fullmatch(pin):
            raise ValueError(f"trusted root {pin!r} is not an RFC 7638 SHA-256 thumbprint (43 base64url characters)")
    return pins


def pinned_root_keys(jwks: Mapping[str, Any], pins: frozenset[str]) -> dict[str, dict[str, Any]]:
    """The keys of a jwks document whose own thumbprint is pinned, indexed by that thumbprint.

    A key's stated `kid` plays no part: a key is trusted for what it is, not for what a
    (possibly licensee-written) document calls it."""
    found: dict[str, dict[str, Any]] = {}
    for jwk in jwks.get("keys", []) if isinstance(jwks, Mapping) else []:
        if not isinstance(jwk, dict):
            continue
        try:
            thumbprint = jwk_thumbprint(jwk)
        except TokenInvalid:
            continue
        if thumbprint in pins:
            found[thumbprint] = {**jwk, "kid": thumbprint}
    return found


def _int(value: str) -> int:
    return int.from_bytes(b64url_decode(value), "big")


def public_key(jwk: Mapping[str, Any]):
    try:
        kty = jwk.get("kty")
        if kty == "EC" and jwk.get("crv") == "P-256":
            return ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]), ec.SECP256R1()).public_key()
        if kty == "RSA":
            key = rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
            if key.key_size < 2048:
                raise TokenInvalid("RSA keys under 2048 bits are not accepted")
            return key
        if kty == "OKP" and jwk.get("crv") == "Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    except (KeyError, ValueError, TypeError):
        raise TokenInvalid("malformed JWK") from None
    raise TokenInvalid(f"unsupported key type {kty!r}")


def verify_signature(alg: str, key, signing_input: bytes, signature: bytes) -> None:
    try:
        if alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                raise TokenInvalid("an ES256 signature is 64 raw bytes")
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        elif alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signing_input, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        elif alg == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signing_input)
        else:
            raise TokenInvalid(f"algorithm {alg!r} does not match its key")
    except InvalidSignature:
        raise TokenInvalid("bad signature") from None


@dataclass(frozen=True)
class LeaseClaims:
    """A verified lease token's claims. Times are Unix seconds (server clock)."""

    session_id: str
    license_id: str
    tenant_id: str
    uid: str
    hardware_id: str
    tier: str
    features: tuple[str, ...]
    issued_at: int
    expires_at: int
    grace_s: int
    borrowed: bool
    issuer: str
    root_kid: str
    overage: bool = False
    """A seat beyond the license's max_seats, within its overdraft (signed claim `overage`)."""
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def valid_until(self) -> int:
        """Offline validity: the signed expiry plus the license's signed offline grace."""
        return self.expires_at + self.grace_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id, "license_id": self.license_id, "tenant_id": self.tenant_id,
            "uid": self.uid, "hardware_id": self.hardware_id, "tier": self.tier, "features": list(self.features),
            "issued_at": self.issued_at, "expires_at": self.expires_at, "grace_s": self.grace_s,
            "valid_until": self.valid_until, "borrowed": self.borrowed, "issuer": self.issuer,
            "overage": self.overage,
        }


def _number(claims: Mapping[str, Any], name: str, default: int | None = None) -> int:
    value = claims.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenInvalid(f"claim {name!r} must be a number")
    return int(value)


def _root_key(root_kid: str, keys: Mapping[str, Mapping[str, Any]],
              pins: frozenset[str] | None) -> Mapping[str, Any]:
    """The root key a certificate names, refused unless its own thumbprint is pinned (when pins are given)."""
    root = keys.get(root_kid)
    if root is None:
        if pins is not None and root_kid not in pins:
            raise TokenInvalid(f"the certificate's root key {root_kid!r} is not one of the trusted roots")
        raise TokenInvalid(f"the certificate's root key {root_kid!r} is not in the jwks")
    if pins is not None:
        thumbprint = jwk_thumbprint(root)
        if thumbprint not in pins:
            raise TokenInvalid(f"the certificate's root key (thumbprint {thumbprint}) is not one of the trusted roots")
    return root


def _verified_certificate(header: Mapping[str, Any], keys: Mapping[str, Mapping[str, Any]],
                          pins: frozenset[str] | None) -> tuple[dict[str, Any], str]:
    """(claims, root kid) of the token's delegation certificate, its signature checked against its root."""
    certificate = header.get("dlg")
    if not isinstance(certificate, str):
        raise TokenInvalid("the token carries no delegation certificate")
    cert_header, cert, cert_input, cert_signature = split(certificate)
    root_kid = cert_header.get("kid")
    if cert_header.get("typ") != "dlg+jwt" or not isinstance(root_kid, str):
        raise TokenInvalid("malformed delegation certificate")
    root = _root_key(root_kid, keys, pins)
    if root.get("alg") not in (None, cert_header.get("alg")):
        raise TokenInvalid("the certificate's algorithm is not its root key's")
    verify_signature(str(cert_header.get("alg")), public_key(root), cert_input, cert_signature)
    return cert, root_kid


def _verify_delegated_signature(header: Mapping[str, Any], cert: Mapping[str, Any], signing_input: bytes,
                                signature: bytes) -> None:
    delegate = cert.get("jwk")
    if not isinstance(delegate, dict):
        raise TokenInvalid("the certificate holds no delegate key")
    delegate_kid = jwk_thumbprint(delegate)
    if not (delegate_kid == delegate.get("kid", delegate_kid) == cert.get("sub") == header.get("kid")):
        raise TokenInvalid("the token's key is not the certified delegate")
    if delegate.get("alg") not in (None, header.get("alg")):
        raise TokenInvalid("the token's algorithm is not its delegate key's")
    verify_signature(str(header.get("alg")), public_key(delegate), signing_input, signature)


def _verified_delegated_jws(token: str, keys: Mapping[str, Mapping[str, Any]], pins: frozenset[str] | None, *,
                            typ: str, what: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(claims, certificate claims, root kid) of a compact JWS of type `typ` signed by a
    certified delegate: its typ and alg, the certificate under its root, its signature.
    Nothing about time or claims is checked here (lease tokens and usage statements differ)."""
    header, claims, signing_input, signature = split(token)
    if header.get("typ") != typ or header.get("alg") not in ("ES256", "EdDSA"):
        raise TokenInvalid(f"not a {what} (typ {typ}, alg ES256/EdDSA)")
    cert, root_kid = _verified_certificate(header, keys, pins)
    _verify_delegated_signature(header, cert, signing_input, signature)
    return claims, cert, root_kid


def _check_within_certificate(cert: Mapping[str, Any], iat: int, exp: int, grace: int) -> None:
    """The token claims no more than its certificate allows (the bound in the module doc)."""
    cert_iat, cert_exp = _number(cert, "iat"), _number(cert, "exp")
    lease_max_s = cert.get("lease_max_s")
    if isinstance(lease_max_s, bool) or not isinstance(lease_max_s, int) or lease_max_s < 0:
        raise TokenInvalid("malformed delegation certificate: no integer lease_max_s >= 0")
    if not cert_iat <= iat < cert_exp:
        raise TokenInvalid("token issued outside its certificate's validity")
    if exp < iat:
        raise TokenInvalid("the token expires before it was issued")
    if exp + grace > cert_exp + lease_max_s:
        raise TokenInvalid(f"the token's validity (exp + grace = {exp + grace}) exceeds its certificate's bound "
                           f"(exp + lease_max_s = {cert_exp + lease_max_s})")


def _bound_strings(claims: Mapping[str, Any]) -> dict[str, str]:
    strings = {}
    for name in ("sub", "lic", "ten", "uid", "hw"):
        value = claims.get(name)
        if not isinstance(value, str) or not value:
            raise TokenInvalid(f"claim {name!r} missing")
        strings[name] = value
    return strings


def verify_lease_token(token: str, keys: Mapping[str, Mapping[str, Any]], *, now: float | None = None,
                       leeway_s: int = CLOCK_SKEW_S, issuer: str | None = None,
                       hardware_id: str | None = None, license_id: str | None = None,
                       trusted_roots: Iterable[str] | None = None) -> LeaseClaims:
    """Verify a lease token against root keys (kid -> JWK); LeaseClaims or TokenInvalid/TokenExpired.

    Args:
        keys: candidate root keys. Without `trusted_roots` they are the caller's trust
            anchors as given; with it, they only supply key material.
        trusted_roots: RFC 7638 thumbprints (base64url SHA-256) of the root keys to
            accept, which is what the server publishes as each root's `kid`. The root key
            is used only if the thumbprint computed from it is in this set.
        issuer, hardware_id, license_id: when given, must match the token's claims (a
            borrow token copied to another machine fails the hardware check).

    Raises:
        ValueError: `trusted_roots` is malformed (see `trusted_root_set`).
    """
    pins = trusted_root_set(trusted_roots)
    now = time.time() if now is None else now
    claims, cert, root_kid = _verified_delegated_jws(token, keys, pins, typ="lease+jwt", what="lease token")

    iat, exp = _number(claims, "iat"), _number(claims, "exp")
    grace = _number(claims, "grace", 0)
    if grace < 0:
        raise TokenInvalid("negative grace")
    _check_within_certificate(cert, iat, exp, grace)
    if cert.get("iss") != claims.get("iss"):
        raise TokenInvalid("token and certificate issuers differ")
    if issuer is not None and claims.get("iss") != issuer:
        raise TokenInvalid(f"issuer {claims.get('iss')!r} is not {issuer!r}")
    if iat > now + leeway_s:
        raise TokenInvalid("token issued in the future (check this machine's clock)")

    strings = _bound_strings(claims)
    features = claims.get("features", [])
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise TokenInvalid("claim 'features' must be a list of strings")
    if hardware_id is not None and strings["hw"] != hardware_id:
        raise TokenInvalid("the token is bound to another machine")
    if license_id is not None and strings["lic"] != license_id:
        raise TokenInvalid("the token is for another license")
    result = LeaseClaims(
        session_id=strings["sub"], license_id=strings["lic"], tenant_id=strings["ten"], uid=strings["uid"],
        hardware_id=strings["hw"], tier=str(claims.get("tier", "")), features=tuple(features),
        issued_at=iat, expires_at=exp, grace_s=grace, borrowed=claims.get("bor") is True,
        issuer=str(claims.get("iss")), root_kid=root_kid, overage=claims.get("overage") is True, raw=dict(claims),
    )
    if now >= result.valid_until + leeway_s:
        raise TokenExpired(f"the lease token expired {int(now - result.valid_until)} s ago (exp + grace)",
                           details={"claims": result.as_dict()})
    return result


def keys_by_kid(jwks: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    keys: list[Any] = jwks.get("keys", []) if isinstance(jwks, Mapping) else []
    return {k["kid"]: dict(k) for k in keys if isinstance(k, dict) and isinstance(k.get("kid"), str)}


def root_kid_of(token: str) -> str | None:
    """The root kid a token's certificate names (unverified), or None if unreadable."""
    try:
        certificate = split(token)[0].get("dlg")
        return split(certificate)[0].get("kid") if isinstance(certificate, str) else None
    except TokenInvalid:
        return None
