"""Delegated signing: lease tokens signed in-process, rooted in KMS.

Each process makes an in-memory P-256 delegate key and has the KMS root sign a
short-lived certificate for it (one KMS call per process per `ttl`). Lease tokens are
signed locally (~50 us) and carry the certificate in their `dlg` header. A verifier
checks the certificate against JWKS, the token against the certificate's key, and that
the token's `iat` lies inside the certificate's validity.

    certificate  header {alg: root alg, kid: root kid, typ: "dlg+jwt"}
                 claims {iss, sub: delegate kid, jwk: delegate public JWK, iat, exp, lease_max_s}
    lease token  header {alg: "ES256", kid: delegate kid, typ: "lease+jwt", dlg: certificate}
    statement    header {alg: "ES256", kid: delegate kid, typ: "usage-statement+jwt", dlg: certificate}
                 (a signed usage statement: shared/licensing/usage_reports.py; no `exp`, it
                 is a record, not a credential: its `iat` lies inside the certificate's
                 validity, so it verifies with `jwks` alone for as long as jwks publishes
                 the root key version)

The certificate also bounds what its delegate may sign: a token's offline validity
(`exp + grace`) never lies more than `lease_max_s` past the certificate's `exp`.
Verifiers refuse a token that claims more, and this signer never makes one, so a
leaked delegate key (it lives an hour, in memory) cannot mint a ten-year lease.
`lease_max_s` is the longest borrow plus the longest offline grace a license may set.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from shared.clock import Clock
from shared.tokens.jose import public_jwk, sign_compact
from shared.tokens.kms_root import RootSigner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Delegate:
    private_key: ec.EllipticCurvePrivateKey
    kid: str
    certificate: str
    valid_until_s: int


class TokenBeyondCertificate(ValueError):
    """A lease token would claim more offline validity than its certificate allows."""


class DelegatedSigner:
    """Signs lease tokens with a delegate key, renewing its certificate before it lapses."""

    def __init__(self, root: RootSigner, clock: Clock, *, issuer: str, lease_max_s: int, ttl_s: int = 3600,
                 renew_margin_s: int = 300):
        if renew_margin_s >= ttl_s:
            raise ValueError("renew_margin_s must be shorter than ttl_s")
        if lease_max_s < 0:
            raise ValueError("lease_max_s must not be negative")
        self._lease_max_s = lease_max_s
        self._root = root
        self._clock = clock
        self._issuer = issuer
        self._ttl_s = ttl_s
        self._renew_margin_s = renew_margin_s
        self._lock = threading.Lock()
        self._delegate: _Delegate | None = None

    def _current(self, now_s: int) -> _Delegate:
        delegate = self._delegate
        if delegate is not None and now_s < delegate.valid_until_s - self._renew_margin_s:
            return delegate
        with self._lock:  # one renewal at a time; other threads reuse its result
            delegate = self._delegate
            if delegate is None or now_s >= delegate.valid_until_s - self._renew_margin_s:
                delegate = self._new_delegate(now_s)
                self._delegate = delegate
            return delegate

    def _new_delegate(self, now_s: int) -> _Delegate:
        private_key = ec.generate_private_key(ec.SECP256R1())
        jwk = public_jwk(private_key.public_key())
        root_kid, root_alg = self._root.current_key()
        certificate = sign_compact(
            {"alg": root_alg, "kid": root_kid, "typ": "dlg+jwt"},
            {"iss": self._issuer, "sub": jwk["kid"], "jwk": jwk, "iat": now_s, "exp": now_s + self._ttl_s,
             "lease_max_s": self._lease_max_s},
            lambda signing_input: self._root.sign(root_kid, signing_input),
        )
        log.info("delegation certificate issued", extra={"delegate_kid": jwk["kid"], "root_kid": root_kid})
        return _Delegate(private_key, jwk["kid"], certificate, now_s + self._ttl_s)

    def prepare(self, now_s: int) -> None:
        """Make sure a certificate is ready, so signing right after needs no KMS call."""
        self._current(now_s)

    def sign_lease(self, claims: dict[str, Any]) -> str:
        """A compact `lease+jwt` JWS over `claims` (which must hold `iat` and `exp`).

        Raises TokenBeyondCertificate rather than sign a token whose `exp + grace` lies
        past what the certificate allows (see the module doc)."""
        delegate = self._current(int(claims["iat"]))
        valid_until_s = int(claims["exp"]) + int(claims.get("grace", 0))
        if valid_until_s > delegate.valid_until_s + self._lease_max_s or int(claims["exp"]) < int(claims["iat"]):
            raise TokenBeyondCertificate(
                f"a token valid until {valid_until_s} is beyond its certificate's bound "
                f"({delegate.valid_until_s} + {self._lease_max_s} s)"
            )
        return jwt.encode(
            claims,
            delegate.private_key,
            algorithm="ES256",
            headers={"typ": "lease+jwt", "kid": delegate.kid, "dlg": delegate.certificate},
        )

    def sign_statement(self, claims: dict[str, Any]) -> str:
        """A compact `usage-statement+jwt` JWS over `claims` (which must hold `iat`), signed
        by the delegate whose certificate covers that `iat`. A different `typ` from lease
        tokens, so neither verifier accepts the other."""
        delegate = self._current(int(claims["iat"]))
        return jwt.encode(
            claims,
            delegate.private_key,
            algorithm="ES256",
            headers={"typ": "usage-statement+jwt", "kid": delegate.kid, "dlg": delegate.certificate},
        )
