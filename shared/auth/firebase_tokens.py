"""Firebase ID token verification through firebase-admin.

Production: RS256 tokens checked against Google's published certificates (signature,
`exp`/`iat` with a small clock skew, `aud` = project, `iss` = securetoken/<project>).
Locally, with FIREBASE_AUTH_EMULATOR_HOST set, firebase-admin accepts the emulator's
unsigned tokens (and does not check `exp`: see LOCAL_STACK.md), which is why the
production path is tested separately with a test key whose certificates a test serves
(`id_token_certs_url`).
"""

from __future__ import annotations

import threading
import time
import uuid

import cachetools
import firebase_admin
import google.auth.credentials
from firebase_admin import auth as firebase_auth
from firebase_admin import credentials as firebase_credentials
from firebase_admin import exceptions as firebase_exceptions

from shared.auth.principal import principal_from_claims
from shared.config import ConfigError
from shared.domain import Principal
from shared.errors import BackendUnavailable, Unauthenticated


class _VerifyOnlyCredential(firebase_credentials.Base):
    """Checking an ID token needs only Google's public certificates, never our identity;
    so no service-account key and no ADC lookup are involved."""

    def get_credential(self):
        return google.auth.credentials.AnonymousCredentials()


class FirebaseTokenVerifier:
    """Verifies Firebase ID tokens for one project.

    With `check_account`, each token is also checked once against the account as Firebase
    holds it now (one Auth lookup per uncached token): a disabled account, tokens revoked
    since this one was issued, or custom claims (role, tenant) changed since are refused.
    The admin function needs this: an ID token lives an hour, and an administrator who
    was disabled or demoted must lose access within the cache's life, not the token's.
    """

    # A tool sends the same ID token with every heartbeat for the hour it lives; checking
    # its RS256 signature each time is wasted work. Verified tokens are remembered by
    # their exact text for a few minutes, and never past their own `exp`.
    _CACHE_TTL_S = 300
    _ACCOUNT_CHECK_TTL_S = 60  # how stale an administrator's account state may be
    _CACHE_SIZE = 20_000

    def __init__(self, project_id: str, *, emulated: bool = False, check_account: bool = False,
                 certs_url: str | None = None, clock_skew_s: int = 5):
        if emulated and not project_id.startswith("demo-"):
            raise ConfigError(f"emulator ID tokens are refused for project {project_id!r} (only demo-* projects)")
        # A private app per verifier: several configurations can coexist in one process.
        # Looking an account up needs our own identity (the function's service account,
        # roles/firebaseauth.viewer); checking a signature needs none.
        credential = firebase_credentials.ApplicationDefault() if check_account else _VerifyOnlyCredential()
        self._app = firebase_admin.initialize_app(
            credential, options={"projectId": project_id}, name=f"license-server-{uuid.uuid4().hex}"
        )
        self._check_account = check_account
        self._clock_skew_s = clock_skew_s
        self._verified: cachetools.TTLCache[str, tuple[Principal, int]] = cachetools.TTLCache(
            self._CACHE_SIZE, self._ACCOUNT_CHECK_TTL_S if check_account else self._CACHE_TTL_S
        )
        self._cache_lock = threading.Lock()
        if certs_url:
            # firebase-admin has no public option for this URL; tests serve their own
            # certificates to exercise the production (signature-checking) path.
            client = firebase_auth._get_client(self._app)
            client._token_verifier.id_token_verifier.cert_url = certs_url

    def verify(self, token: str) -> Principal:
        with self._cache_lock:
            cached = self._verified.get(token)
        if cached is not None:
            principal, expires_s = cached
            if time.time() < expires_s + self._clock_skew_s:
                return principal
            raise Unauthenticated("the ID token has expired; refresh it and retry")
        principal, expires_s = self._verify_uncached(token)
        if expires_s > time.time():
            with self._cache_lock:
                self._verified[token] = (principal, expires_s)
        return principal

    def _verify_uncached(self, token: str) -> tuple[Principal, int]:
        try:
            claims = firebase_auth.verify_id_token(token, app=self._app, clock_skew_seconds=self._clock_skew_s)
        except firebase_auth.CertificateFetchError as exc:
            raise BackendUnavailable("firebase-auth certificates") from exc
        except firebase_auth.ExpiredIdTokenError as exc:
            raise Unauthenticated("the ID token has expired; refresh it and retry") from exc
        # RecursionError: a token whose JSON nests deeply (a few KiB suffice) overflows the
        # parser inside firebase-admin; it is a malformed token, not a server error.
        except (firebase_auth.InvalidIdTokenError, ValueError, RecursionError) as exc:
            raise Unauthenticated("the ID token is not valid for this service") from exc
        expires_s = claims.get("exp") if isinstance(claims.get("exp"), (int, float)) else 0
        principal = principal_from_claims(claims)
        if self._check_account:
            self._check_account_is_current(claims)
        return principal, int(expires_s)

    def _check_account_is_current(self, claims: dict) -> None:
        """Refuse a token whose account was disabled, revoked or re-roled since it was issued."""
        try:
            user = firebase_auth.get_user(claims["uid"], app=self._app)
        except firebase_auth.UserNotFoundError as exc:
            raise Unauthenticated("the ID token's account no longer exists") from exc
        except firebase_exceptions.FirebaseError as exc:
            raise BackendUnavailable("firebase-auth") from exc
        if user.disabled:
            raise Unauthenticated("this account is disabled")
        issued_ms = int(claims.get("iat") or 0) * 1000  # as firebase-admin's own check_revoked
        if user.tokens_valid_after_timestamp and issued_ms < user.tokens_valid_after_timestamp:
            raise Unauthenticated("the ID token was revoked; sign in again")
        current = user.custom_claims or {}
        if any(current.get(name) != claims.get(name) for name in ("role", "tenant")):
            raise Unauthenticated("the account's role or tenant changed since this ID token was issued; refresh it")
