"""Cloud Scheduler's OIDC tokens, for the sweep function.

Scheduler signs an ID token as its service account for the audience we configure (the
sweep function's URL). We check it with google-auth against Google's OAuth2
certificates: signature, expiry, issuer, audience, then that the email is exactly the
scheduler's service account. Tests and the dev stack serve their own certificates
(`certs_url`), so this production code runs unchanged locally.
"""

from __future__ import annotations

import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.id_token

from shared.errors import BackendUnavailable, Forbidden, Unauthenticated

_GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
GOOGLE_OAUTH2_CERTS = "https://www.googleapis.com/oauth2/v1/certs"


class SchedulerTokenVerifier:
    def __init__(self, *, audience: str, service_account: str, certs_url: str | None = None, clock_skew_s: int = 10):
        self._audience = audience
        self._service_account = service_account
        self._certs_url = certs_url or GOOGLE_OAUTH2_CERTS
        self._clock_skew_s = clock_skew_s
        self._request = google.auth.transport.requests.Request()

    def verify(self, token: str) -> str:
        """The caller's service-account email; Unauthenticated or Forbidden otherwise."""
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
        if claims.get("email") != self._service_account or claims.get("email_verified") is not True:
            raise Forbidden("only the scheduler's service account may run the sweep")
        return claims["email"]
