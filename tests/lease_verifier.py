"""An independent lease-token verifier for tests: plain `cryptography`, no shared/ code.

It follows docs/design.md's recipe from the outside, as a customer's verifier would:
certificate against JWKS, token against the certificate's key, token iat inside the
certificate's validity, token exp + grace within the certificate's bound (its exp plus
its `lease_max_s`), token exp in the future.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


class Rejected(Exception):
    pass


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _public_key(jwk: dict[str, Any]):
    if jwk["kty"] == "EC" and jwk["crv"] == "P-256":
        x, y = (int.from_bytes(_b64decode(jwk[c]), "big") for c in ("x", "y"))
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    if jwk["kty"] == "RSA":
        n, e = (int.from_bytes(_b64decode(jwk[c]), "big") for c in ("n", "e"))
        return rsa.RSAPublicNumbers(e, n).public_key()
    raise Rejected(f"unsupported key {jwk['kty']}")


def _verify_jws(compact: str, jwk: dict[str, Any]) -> tuple[dict, dict]:
    try:
        header_b64, payload_b64, signature_b64 = compact.split(".")
    except ValueError:
        raise Rejected("not a compact JWS") from None
    header, payload = json.loads(_b64decode(header_b64)), json.loads(_b64decode(payload_b64))
    signing_input, signature = f"{header_b64}.{payload_b64}".encode(), _b64decode(signature_b64)
    key = _public_key(jwk)
    try:
        if header["alg"] == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                raise Rejected("ES256 signature must be 64 raw bytes")
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        elif header["alg"] == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise Rejected(f"algorithm {header['alg']} does not match the key")
    except InvalidSignature:
        raise Rejected("bad signature") from None
    return header, payload


def verify_lease_token(token: str, jwks: dict[str, Any], *, now_s: int) -> dict[str, Any]:
    """The token's claims if it verifies; raises Rejected otherwise."""
    header = json.loads(_b64decode(token.split(".")[0]))
    if header.get("typ") != "lease+jwt" or header.get("alg") != "ES256":
        raise Rejected("not a lease token")
    cert_header = json.loads(_b64decode(header["dlg"].split(".")[0]))
    roots = {k["kid"]: k for k in jwks["keys"]}
    if cert_header.get("typ") != "dlg+jwt" or cert_header.get("kid") not in roots:
        raise Rejected("certificate not rooted in the published keys")
    _, cert = _verify_jws(header["dlg"], roots[cert_header["kid"]])
    if cert["jwk"]["kid"] != header["kid"] or cert["sub"] != header["kid"]:
        raise Rejected("token key is not the certified delegate")
    _, claims = _verify_jws(token, cert["jwk"])
    if not cert["iat"] <= claims["iat"] < cert["exp"]:
        raise Rejected("token issued outside the certificate's validity")
    lease_max_s = cert.get("lease_max_s")
    if not isinstance(lease_max_s, int) or isinstance(lease_max_s, bool) or lease_max_s < 0:
        raise Rejected("the certificate states no lease_max_s")
    if claims["exp"] + claims.get("grace", 0) > cert["exp"] + lease_max_s:
        raise Rejected("token valid beyond what its certificate allows")
    if now_s >= claims["exp"]:
        raise Rejected("token expired")
    return claims
