"""Checking a lease token this service signed, as any verifier would (docs/design.md).

The service needs it in one place: after Redis lost data, a restored lease counts but
its holder must prove the lease was still valid (heartbeat_seat.lua) before it is
extended as the holder's own rather than revived like a lapsed one. The proof is the
last token the holder was given: unforgeable, bound to the session, and carrying the
lease's end.
"""

from __future__ import annotations

import logging
from typing import Any

import jwt

from shared.tokens.kms_root import RootSigner

log = logging.getLogger(__name__)


class LeaseTokenChecker:
    def __init__(self, root: RootSigner, *, issuer: str) -> None:
        self._root = root
        self._issuer = issuer

    def _root_key(self, kid: str) -> Any | None:
        jwk = next((k for k in self._root.public_jwks() if k.get("kid") == kid), None)
        return jwt.PyJWK(jwk).key if jwk is not None else None

    def proves_lease(self, token: str, *, session_id: str, now_s: int) -> bool:
        """True if `token` is a lease token of `session_id` signed through this service's
        root whose lease (`exp`, not its offline grace) has not ended at `now_s`."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("typ") != "lease+jwt" or header.get("alg") != "ES256" or "dlg" not in header:
                return False
            certificate = header["dlg"]
            cert_header = jwt.get_unverified_header(certificate)
            root_key = self._root_key(str(cert_header.get("kid")))
            if root_key is None or cert_header.get("typ") != "dlg+jwt":
                return False
            # A token outlives its certificate by design (up to lease_max_s): not the cert's exp.
            # Times are checked below against the service's clock, not PyJWT's wall clock.
            cert = jwt.decode(certificate, root_key, algorithms=[str(cert_header.get("alg"))], issuer=self._issuer,
                              options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                       "require": ["sub", "jwk", "iat", "exp", "lease_max_s"]})
            if cert["sub"] != header.get("kid"):
                return False
            claims = jwt.decode(token, jwt.PyJWK(cert["jwk"]).key, algorithms=["ES256"], issuer=self._issuer,
                                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                         "require": ["sub", "iat", "exp"]})
        except (jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
            log.info("a lease token offered as proof was refused: %s", type(exc).__name__)
            return False
        inside_certificate = cert["iat"] <= claims["iat"] <= cert["exp"]
        within_bound = claims["exp"] + claims.get("grace", 0) <= cert["exp"] + cert["lease_max_s"]
        issued_already = claims["iat"] <= now_s + 5  # a few seconds of skew between instances
        return bool(claims["sub"] == session_id and inside_certificate and within_bound and issued_already
                    and claims["exp"] > now_s)
