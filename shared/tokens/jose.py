"""The few JOSE pieces PyJWT leaves to us: JWK thumbprints and hand-built JWS.

PyJWT signs with a key it holds; the KMS root key never leaves KMS, so a delegation
certificate is assembled here and only its signature comes from KMS.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact_json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def public_jwk(public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> dict[str, Any]:
    """The public JWK of a key, with its RFC 7638 thumbprint as `kid`."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
        required = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
        alg = "ES256"
    else:
        jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
        required = {k: jwk[k] for k in ("e", "kty", "n")}
        alg = "RS256"
    kid = b64url(hashlib.sha256(_compact_json(required)).digest())
    return {**required, "kid": kid, "alg": alg, "use": "sig"}


def sign_compact(header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A compact JWS whose signature over `header.payload` comes from `sign`."""
    signing_input = f"{b64url(_compact_json(header))}.{b64url(_compact_json(payload))}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"
