"""HTTP to the license server: URLs, the ID token, typed errors, retries with backoff.

`server` is the base URL of the functions (`http://127.0.0.1:8080` locally: every
function at `<server>/<name>`), or a template with `{name}` for deployments where each
function has its own host (`https://{name}-abc123-uc.a.run.app`).

Plain `http://` is refused except on this machine's loopback (127.0.0.0/8, ::1,
`localhost`): the ID token travels in every request, and anyone on the path of a plain
connection could read it and answer in the server's name.

Retried (exponential backoff with jitter, honouring Retry-After): connection errors,
timeouts, 5xx, 429. A 401 is retried once right away with a force-refreshed ID token.
Everything else raises its typed exception at once.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from coditect_license._version import __version__
from coditect_license.errors import AuthError, LicenseError, NetworkError, Unauthenticated, from_response
from coditect_license.identity import TokenProvider

log = logging.getLogger("coditect_license")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5          # total tries (1 = no retry)
    base_s: float = 0.5        # first backoff
    cap_s: float = 30.0        # longest single backoff
    deadline_s: float = 60.0   # no retry starts after this long

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay before try number `attempt + 1` (attempt counts from 1): full-jitter exponential."""
        delay = min(self.cap_s, self.base_s * (2 ** (attempt - 1))) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(float(retry_after), self.cap_s))
        return delay


NO_RETRY = RetryPolicy(attempts=1)


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_server_url(server: str | None) -> str:
    """`server` without its trailing slash, if it is https:// (or http:// on loopback).

    Raises ValueError (with a message for the user) for anything else."""
    if not server or not server.strip():
        raise ValueError("the license server URL is required (server=... or CODITECT_LICENSE_SERVER)")
    url = server.strip().rstrip("/")
    parts = urlsplit(url.replace("{name}", "function"))
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme == "https" and host:
        return url
    if scheme == "http" and _is_loopback(host):
        return url
    raise ValueError(f"refusing the license server {url!r}: it must be https:// (plain http:// only on this "
                     "machine's loopback: 127.0.0.0/8, ::1, localhost)")


class ApiClient:
    def __init__(self, server: str, token_provider: TokenProvider | None, *, timeout_s: float = 10.0,
                 retry: RetryPolicy = RetryPolicy(), verify: Any = True,
                 transport: httpx.BaseTransport | None = None):
        self.server = checked_server_url(server)
        self.token_provider = token_provider
        self.retry = retry
        self._timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
        self._verify = verify
        self._transport = transport
        self._client = self._new_client()

    def _new_client(self) -> httpx.Client:
        return httpx.Client(timeout=self._timeout, verify=self._verify, transport=self._transport,
                            headers={"User-Agent": f"coditect-license/{__version__}"})

    def url(self, name: str) -> str:
        if "{name}" in self.server:
            function, _, rest = name.partition("/")
            return self.server.replace("{name}", function) + (f"/{rest}" if rest else "")
        return f"{self.server}/{name}"

    def close(self) -> None:
        self._client.close()

    # -- one exchange ------------------------------------------------------------------
    def _once(self, method: str, name: str, body: dict[str, Any] | None, *, auth: bool, force_refresh: bool,
              client: httpx.Client) -> tuple[int, Any, httpx.Headers]:
        headers = {}
        if auth:
            if self.token_provider is None:
                raise AuthError("no ID-token provider: sign in first (token_provider=... or `coditect-license login`)",
                                permanent=True)
            headers["Authorization"] = f"Bearer {self.token_provider.get_token(force_refresh=force_refresh)}"
        try:
            response = client.request(method, self.url(name), json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise NetworkError(f"the license server did not answer in time ({exc.__class__.__name__})") from exc
        except httpx.HTTPError as exc:
            raise NetworkError(f"cannot reach the license server at {self.server}: {exc}") from exc
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = None
        return response.status_code, payload, response.headers

    def call(self, method: str, name: str, body: dict[str, Any] | None = None, *, auth: bool = True,
             retry: RetryPolicy | None = None, stop: threading.Event | None = None,
             fresh_connection: bool = False) -> dict[str, Any]:
        """The JSON answer of a 2xx; the typed LicenseError otherwise (after retries).

        `stop` (an Event) cuts backoff sleeps short (the last error is raised).
        `fresh_connection` uses a connection of its own (safe from signal handlers).
        """
        return self.exchange(method, name, body, auth=auth, retry=retry, stop=stop,
                             fresh_connection=fresh_connection)[1]

    def exchange(self, method: str, name: str, body: dict[str, Any] | None = None, *, auth: bool = True,
                 retry: RetryPolicy | None = None, stop: threading.Event | None = None,
                 fresh_connection: bool = False) -> tuple[int, dict[str, Any]]:
        """As `call`, with the status of the 2xx: (status, JSON answer). Acquire needs it:
        201 a new session, 200 the caller's own handed back, 202 a place in the queue."""
        policy = retry or self.retry
        started = time.monotonic()
        attempt = 0
        refreshed = False
        client = self._new_client() if fresh_connection else self._client
        try:
            while True:
                attempt += 1
                try:
                    status, payload, headers = self._once(method, name, body, auth=auth, force_refresh=False,
                                                          client=client)
                    if status == 401 and auth and not refreshed:
                        refreshed = True  # the token may have just expired: once more with a fresh one
                        status, payload, headers = self._once(method, name, body, auth=auth, force_refresh=True,
                                                              client=client)
                    if 200 <= status < 300:
                        return status, payload if isinstance(payload, dict) else {}
                    error: LicenseError = from_response(status, payload, _retry_after(headers))
                except (NetworkError, AuthError) as exc:
                    error = exc
                if not error.retryable or attempt >= policy.attempts:
                    raise error
                delay = policy.backoff(attempt, error.retry_after)
                if time.monotonic() - started + delay > policy.deadline_s:
                    raise error
                log.info("%s %s failed (%s); retry %d in %.1f s", method, name, error.code, attempt, delay)
                if stop is not None:
                    if stop.wait(delay):
                        raise error
                else:
                    time.sleep(delay)
        finally:
            if fresh_connection:
                client.close()

    def post(self, name: str, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.call("POST", name, body, **kwargs)

    def jwks(self, *, retry: RetryPolicy | None = None) -> dict[str, Any]:
        return self.call("GET", "jwks", auth=False, retry=retry or NO_RETRY)


__all__ = ["ApiClient", "RetryPolicy", "NO_RETRY", "Unauthenticated", "checked_server_url"]
