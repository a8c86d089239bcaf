"""Who the tool is: providers of Firebase ID tokens for the `Authorization` header.

A provider is anything with `get_token(force_refresh=False) -> str`, or a plain callable
returning a token (wrapped by `as_provider`). Shipped:

- `StaticTokenProvider(token)`: a token you already have (CI secrets, tests).
- `FirebaseAuthProvider`: Firebase Auth's REST API. Signs in with email/password
  (`accounts:signInWithPassword`) or a custom token (`accounts:signInWithCustomToken`),
  and refreshes the 1-hour ID token with the refresh token (securetoken `token`
  endpoint) `refresh_margin_s` before it expires, so a tool can hold a seat for days
  without the user signing in again. Hosts are configurable; `for_emulator(host)`
  points both at the Firebase Auth emulator.

Refresh failures never raise into the host application's threads unexpectedly: a
failed refresh while the current token is still valid returns the current token and
reports the failure (`on_error`, `last_error`); once it has expired, `get_token` raises
`AuthError` (retryable unless the refresh token itself was rejected), which the lease's
heartbeat loop treats like a network outage.
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
import random
import threading
import time
from typing import Any, Callable, Protocol, Union, runtime_checkable

import httpx

from coditect_license.errors import AuthError

log = logging.getLogger("coditect_license")

GOOGLE_IDENTITY_TOOLKIT = "https://identitytoolkit.googleapis.com"
GOOGLE_SECURE_TOKEN = "https://securetoken.googleapis.com"

# Firebase REST error messages after which only a new sign-in helps.
_PERMANENT = ("INVALID_PASSWORD", "EMAIL_NOT_FOUND", "INVALID_LOGIN_CREDENTIALS", "USER_DISABLED",
              "USER_NOT_FOUND", "INVALID_REFRESH_TOKEN", "TOKEN_EXPIRED", "INVALID_CUSTOM_TOKEN",
              "CREDENTIAL_MISMATCH", "INVALID_ID_TOKEN", "MISSING_REFRESH_TOKEN", "INVALID_GRANT_TYPE",
              "PROJECT_NUMBER_MISMATCH", "API_KEY_INVALID", "INVALID_API_KEY", "OPERATION_NOT_ALLOWED",
              "PASSWORD_LOGIN_DISABLED")


@runtime_checkable
class TokenProvider(Protocol):
    def get_token(self, *, force_refresh: bool = False) -> str:  # pragma: no cover - protocol
        ...


class StaticTokenProvider:
    """Always the same token (it is the caller's job to keep it current)."""

    def __init__(self, token: str):
        if not token or not token.strip():
            raise ValueError("an ID token is required")
        self._token = token.strip()

    def get_token(self, *, force_refresh: bool = False) -> str:
        return self._token


class CallableTokenProvider:
    """Wraps `fn()` or `fn(force_refresh=...)`; exceptions become AuthError (retryable)."""

    def __init__(self, fn: Callable[..., str]):
        self._fn = fn
        try:
            parameters = inspect.signature(fn).parameters.values()
            self._takes_flag = any(p.name == "force_refresh" or p.kind is p.VAR_KEYWORD for p in parameters)
        except (TypeError, ValueError):
            self._takes_flag = False

    def get_token(self, *, force_refresh: bool = False) -> str:
        try:
            token = self._fn(force_refresh=force_refresh) if self._takes_flag else self._fn()
        except AuthError:
            raise
        except Exception as exc:
            raise AuthError(f"the token provider failed: {exc}") from exc
        if not isinstance(token, str) or not token:
            raise AuthError("the token provider returned no token")
        return token


ProviderLike = Union[TokenProvider, Callable[..., str], str]


def as_provider(value: ProviderLike) -> TokenProvider:
    if isinstance(value, str):
        return StaticTokenProvider(value)
    if isinstance(value, TokenProvider):  # runtime_checkable: anything with get_token()
        return value
    if callable(value):
        return CallableTokenProvider(value)
    raise TypeError("token_provider must be a str, a callable or an object with get_token()")


def _jwt_exp(token: str) -> float | None:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, KeyError, ValueError, TypeError):
        return None


class FirebaseAuthProvider:
    """ID tokens from Firebase Auth's REST API, refreshed before they expire.

        provider = FirebaseAuthProvider.sign_in_with_password(api_key, email, password)
        provider = FirebaseAuthProvider.sign_in_with_custom_token(api_key, custom_token)
        provider = FirebaseAuthProvider(api_key, refresh_token=stored)   # later runs

    `on_refresh_token(new)` is called whenever Firebase rotates the refresh token (the CLI
    stores it); `on_error(exc)` whenever a refresh fails.
    """

    def __init__(self, api_key: str, *, refresh_token: str | None = None, id_token: str | None = None,
                 identitytoolkit_url: str = GOOGLE_IDENTITY_TOOLKIT, securetoken_url: str = GOOGLE_SECURE_TOKEN,
                 refresh_margin_s: float = 300.0, timeout_s: float = 10.0, attempts: int = 3,
                 on_refresh_token: Callable[[str], None] | None = None,
                 on_error: Callable[[AuthError], None] | None = None,
                 http: httpx.Client | None = None):
        self.api_key = api_key
        self.identitytoolkit_url = identitytoolkit_url.rstrip("/")
        self.securetoken_url = securetoken_url.rstrip("/")
        self.refresh_margin_s = refresh_margin_s
        self._attempts = max(1, attempts)
        self._on_refresh_token = on_refresh_token
        self._on_error = on_error
        self._http = http or httpx.Client(timeout=timeout_s)
        self._lock = threading.Lock()
        self._refresh_token = refresh_token
        self._id_token: str | None = None
        self._expires_at = 0.0  # wall clock, from the token's own exp
        self.uid: str | None = None
        self.email: str | None = None
        self.last_error: AuthError | None = None
        self.refreshes = 0
        if id_token:
            self._id_token, self._expires_at = id_token, _jwt_exp(id_token) or 0.0

    # -- construction -----------------------------------------------------------------
    @classmethod
    def for_emulator(cls, host: str, api_key: str = "emulator-api-key", **kwargs: Any) -> FirebaseAuthProvider:
        """Both endpoints on a Firebase Auth emulator at `host` (e.g. "127.0.0.1:9099")."""
        base = host if "://" in host else f"http://{host}"
        base = base.rstrip("/")
        return cls(api_key, identitytoolkit_url=f"{base}/identitytoolkit.googleapis.com",
                   securetoken_url=f"{base}/securetoken.googleapis.com", **kwargs)

    @classmethod
    def sign_in_with_password(cls, api_key: str, email: str, password: str, **kwargs: Any) -> FirebaseAuthProvider:
        provider = cls(api_key, **kwargs)
        provider.sign_in_password(email, password)
        return provider

    @classmethod
    def sign_in_with_custom_token(cls, api_key: str, custom_token: str, **kwargs: Any) -> FirebaseAuthProvider:
        provider = cls(api_key, **kwargs)
        provider.sign_in_custom_token(custom_token)
        return provider

    # -- sign-in ------------------------------------------------------------------------
    def sign_in_password(self, email: str, password: str) -> None:
        body = self._post_json("accounts:signInWithPassword",
                               {"email": email, "password": password, "returnSecureToken": True})
        self._accept(body.get("idToken"), body.get("refreshToken"), body.get("expiresIn"), body.get("localId"),
                     body.get("email"))

    def sign_in_custom_token(self, custom_token: str) -> None:
        body = self._post_json("accounts:signInWithCustomToken", {"token": custom_token, "returnSecureToken": True})
        self._accept(body.get("idToken"), body.get("refreshToken"), body.get("expiresIn"), None, None)

    @property
    def refresh_token(self) -> str | None:
        return self._refresh_token

    @property
    def expires_at(self) -> float:
        return self._expires_at

    # -- the provider protocol ----------------------------------------------------------
    def get_token(self, *, force_refresh: bool = False) -> str:
        with self._lock:
            now, current = time.time(), self._id_token
            if current is not None and now < self._expires_at - self.refresh_margin_s and not force_refresh:
                return current
            try:
                return self._refresh_locked()
            except AuthError as exc:
                self.last_error = exc
                log.warning("ID token refresh failed: %s", exc)
                if self._on_error is not None:
                    try:
                        self._on_error(exc)
                    except Exception:  # a reporting hook must not break token supply
                        log.exception("on_error callback failed")
                if self._id_token is not None and now < self._expires_at - 5 and not exc.permanent:
                    return self._id_token  # still valid: report, keep going, retry next time
                raise

    def refresh(self) -> str:
        """Refresh now (whatever the current token's age)."""
        return self.get_token(force_refresh=True)

    # -- internals ----------------------------------------------------------------------
    def _refresh_locked(self) -> str:
        """A fresh ID token from the refresh token (the lock held)."""
        if not self._refresh_token:
            raise AuthError("not signed in: no refresh token", permanent=True)
        body = self._request(f"{self.securetoken_url}/v1/token", form={
            "grant_type": "refresh_token", "refresh_token": self._refresh_token})
        id_token = self._accept(body.get("id_token"), body.get("refresh_token"), body.get("expires_in"),
                                body.get("user_id"), None)
        self.refreshes += 1
        self.last_error = None
        return id_token

    def _accept(self, id_token: Any, refresh_token: Any, expires_in: Any, uid: Any, email: Any) -> str:
        """Hold what Firebase Auth answered; the ID token."""
        if not isinstance(id_token, str) or not id_token:
            raise AuthError("Firebase Auth answered without an ID token")
        now = time.time()
        exp = _jwt_exp(id_token)
        try:
            lifetime = float(expires_in) if expires_in is not None else None
        except (TypeError, ValueError):
            lifetime = None
        self._id_token = id_token
        self._expires_at = min(x for x in (exp, now + lifetime if lifetime else None, now + 3600) if x is not None)
        if isinstance(uid, str):
            self.uid = uid
        if isinstance(email, str):
            self.email = email
        if isinstance(refresh_token, str) and refresh_token and refresh_token != self._refresh_token:
            self._refresh_token = refresh_token
            if self._on_refresh_token is not None:
                try:
                    self._on_refresh_token(refresh_token)
                except Exception:
                    log.exception("on_refresh_token callback failed")
        return id_token

    def _post_json(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request(f"{self.identitytoolkit_url}/v1/{method}", json_body=body)

    def _request(self, url: str, *, json_body: dict[str, Any] | None = None,
                 form: dict[str, str] | None = None) -> dict[str, Any]:
        last: AuthError | None = None
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(min(8.0, 0.5 * 2 ** attempt) * random.uniform(0.5, 1.0))
            try:
                response = self._http.post(url, params={"key": self.api_key}, json=json_body, data=form)
            except httpx.HTTPError as exc:
                last = AuthError(f"Firebase Auth unreachable: {exc.__class__.__name__}: {exc}")
                continue
            try:
                body = response.json()
            except ValueError:
                body = {}
            if response.status_code == 200 and isinstance(body, dict):
                return body
            message = ""
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                message = str(body["error"].get("message", ""))
            reason = message.split(":")[0].strip()
            if response.status_code < 500 and response.status_code != 429:
                raise AuthError(f"Firebase Auth refused: {message or response.status_code}",
                                permanent=reason in _PERMANENT or response.status_code in (400, 401, 403),
                                status=response.status_code, details={"reason": reason})
            last = AuthError(f"Firebase Auth answered {response.status_code}: {message}", status=response.status_code)
        assert last is not None
        raise last
