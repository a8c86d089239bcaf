"""Cloud Scheduler's OIDC tokens, for the functions only it calls (sweep, notify).

Scheduler signs an ID token as its service account for the audience we configure (the
function's own URL) and sends it as `Authorization: Bearer <token>`. A token reaches
us in one of two forms:

- Signed, as Scheduler made it (the local stack and tests; and any token Cloud Run's IAM
  did not check). We check it with google-auth against Google's OAuth2 certificates:
  signature, expiry, issuer, audience. Tests and the dev stack serve their own
  certificates (`certs_url`), so this production code runs unchanged locally.
- With its signature replaced by the literal `SIGNATURE_REMOVED_BY_GOOGLE`. Deployed, the
  function is an IAM-protected Cloud Run service: Cloud Run verifies the caller's ID token
  itself, then forwards it to the container with the signature removed, so no signature
  is left to check. Such a token is accepted only where the deployment says Cloud Run's
  IAM stands in front (SCHEDULER_TRUST_PLATFORM_AUTH=1, set by Terraform), and its claims
  are still checked here: issuer, audience, issue and expiry times (same clock skew).

Either way the email must then be exactly the scheduler's service account, verified.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from collections.abc import Mapping
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.id_token

from shared.errors import BackendUnavailable, Forbidden, Unauthenticated

_GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
GOOGLE_OAUTH2_CERTS = "https://www.googleapis.com/oauth2/v1/certs"
REMOVED_SIGNATURE = "SIGNATURE_REMOVED_BY_GOOGLE"
"""What Cloud Run puts in place of the signature of an ID token it has verified, before
passing the token on to the container."""
SERVERLESS_AUTHORIZATION = "X-Serverless-Authorization"
"""Cloud Run's alternative to Authorization: when a request carries it, Cloud Run checks
IAM against this header and passes Authorization through to the container untouched."""
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")  # base64url without padding (RFC 7515)


class SchedulerTokenVerifier:
    def __init__(self, *, audience: str, service_account: str, certs_url: str | None = None, clock_skew_s: int = 10,
                 trust_platform_auth: bool = False):
        self._audience = audience
        self._service_account = service_account
        self._certs_url = certs_url or GOOGLE_OAUTH2_CERTS
        self._clock_skew_s = clock_skew_s
        self._trust_platform_auth = trust_platform_auth
        self._request = google.auth.transport.requests.Request()

    def verify(self, token: str, *, serverless_authorization: bool = False) -> str:
        """The caller's service-account email; Unauthenticated or Forbidden otherwise.

        `serverless_authorization`: the request also carried an X-Serverless-Authorization
        header, so Cloud Run checked that header, not this token.
        """
        signature = _structure(token)
        if signature == REMOVED_SIGNATURE:
            claims = self._checked_by_cloud_run(token, serverless_authorization)
        else:
            claims = self._signature_checked(token)
        if claims.get("email") != self._service_account or claims.get("email_verified") is not True:
            raise Forbidden("only the scheduler's service account may run this function")
        return self._service_account

    def _signature_checked(self, token: str) -> Mapping[str, Any]:
        try:
            claims = google.oauth2.id_token.verify_token(
                token, self._request, audience=self._audience, certs_url=self._certs_url,
                clock_skew_in_seconds=self._clock_skew_s,
            )
        except google.auth.exceptions.TransportError as exc:
            raise BackendUnavailable("google oauth2 certificates") from exc
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            raise Unauthenticated("not a valid scheduler token for this function") from exc
        if claims.get("iss") not in _GOOGLE_ISSUERS:
            raise Unauthenticated("the token was not issued by Google")
        return claims

    def _checked_by_cloud_run(self, token: str, serverless_authorization: bool) -> Mapping[str, Any]:
        # Why a token without its signature can be believed, and only when the setting says so:
        #
        # Deployed (terraform/modules/functions), the sweep's and notify's Cloud Run services have no
        # allUsers invoker and internal-only ingress; roles/run.invoker on each is granted to
        # the scheduler's service account alone. Every request therefore passes Cloud Run's
        # IAM check first, which verifies the ID token in Authorization (Google's signature,
        # expiry, an audience that is the service's URL) and the caller's invoker permission,
        # and only then hands the token to the container with its signature replaced by
        # SIGNATURE_REMOVED_BY_GOOGLE. Whoever wrote such a token without Google signing it
        # never got past that check.
        #
        # That guarantee is the deployment's, not the token's: anyone can write
        # "<header>.<claims>.SIGNATURE_REMOVED_BY_GOOGLE". Wherever nothing checks IAM in
        # front of this code (the local stack, tests, a service made public by mistake)
        # it would be a forgery anyone could make. So it is refused unless the deployment
        # declares the IAM check (SCHEDULER_TRUST_PLATFORM_AUTH=1, set only by Terraform next
        # to the IAM binding; off by default).
        #
        # Even then, what Cloud Run checked is narrower than what we require:
        #   - IAM also lets project Owners, Editors and Cloud Run Admins/Invokers invoke, so
        #     the email must still be exactly the scheduler's account (verify());
        #   - Cloud Run accepts any of the service's URLs and custom audiences, so our
        #     audience is checked, and issuer and times again (same clock skew as signed);
        #   - with an X-Serverless-Authorization header, Cloud Run checks that header instead
        #     and passes Authorization through untouched: an invoker could put a scheduler
        #     token of their own writing there. Scheduler never sends that header, so an
        #     unsigned Authorization token beside it is refused.
        # A token that still has a signature never takes this path: it is fully verified.
        if not self._trust_platform_auth:
            raise Unauthenticated("this token's signature was removed; such tokens are accepted only behind "
                                  "Cloud Run's IAM check (SCHEDULER_TRUST_PLATFORM_AUTH)")
        if serverless_authorization:
            raise Unauthenticated(f"with {SERVERLESS_AUTHORIZATION} present, Cloud Run did not check the "
                                  "Authorization token, and its signature was removed")
        claims = _segment_json(token.split(".")[1])
        if claims.get("iss") not in _GOOGLE_ISSUERS:
            raise Unauthenticated("the token was not issued by Google")
        audience = claims.get("aud")
        if not isinstance(audience, str) or audience != self._audience:
            raise Unauthenticated("not a valid scheduler token for this function")
        issued_at, expires_at = _seconds(claims.get("iat")), _seconds(claims.get("exp"))
        if issued_at is None or expires_at is None:
            raise Unauthenticated("the token has no valid iat and exp")
        now = time.time()
        if now < issued_at - self._clock_skew_s:
            raise Unauthenticated("the token was issued in the future")
        if expires_at + self._clock_skew_s < now:
            raise Unauthenticated("the token has expired")
        return claims


def _structure(token: str) -> str:
    """The token's signature part, once the token is three base64url parts whose first two
    are JSON objects; Unauthenticated (never another error) for anything else."""
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT.fullmatch(part) for part in parts):
        raise Unauthenticated("the bearer token is not a JWT (three base64url parts)")
    _segment_json(parts[0])
    _segment_json(parts[1])
    return parts[2]


def _segment_json(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    # binascii.Error, UnicodeDecodeError and JSONDecodeError are ValueErrors; RecursionError:
    # deeply nested arrays (json.loads does not stop them at 8 KiB of token).
    except (ValueError, RecursionError) as exc:
        raise Unauthenticated("the bearer token is not a JWT (a part is not base64url JSON)") from exc
    if not isinstance(value, dict):
        raise Unauthenticated("the bearer token is not a JWT (a part is not a JSON object)")
    return value


def _seconds(value: object) -> float | None:
    """A time claim's value: a JSON number, not true/false, nor the NaN and Infinity that
    Python's json module accepts (nor an integer too large to be a time)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None
