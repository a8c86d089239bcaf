"""The process's Redis client, connected as Memorystore wants: TLS with the instance's CA, AUTH.

In the cloud the URL (rediss://10.0.0.3:6378/0, no password) is plain configuration; the
AUTH string and the server CA are secrets, read when the first connection is made and
cached for the process. A connection that fails to authenticate, or to verify the
server's certificate, marks them stale: the next connection re-reads them (at most once
per `reread_interval_s`, so a wrong secret cannot hammer Secret Manager), which picks up
a rotated AUTH string or CA without a redeploy. Until the secrets are right every
connection fails, and every seat operation answers 503 naming redis: closed, never open.

redis-py calls `connect_check_health` for every (re)connect of a pooled connection; the
two connection classes below read the current secrets there. The password goes through
redis-py's own CredentialProvider, which it asks on each connect.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from redis.credentials import CredentialProvider

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RedisCredentials:
    password: str | None = None
    """Memorystore's AUTH string; None: the server wants none."""
    ca_pem: str | None = None
    """PEM of the CA(s) whose certificate the server must present (rediss:// only)."""


class CredentialCache:
    """The current RedisCredentials of this process: read once, re-read when marked stale."""

    def __init__(self, read: Callable[[], RedisCredentials], *, reread_interval_s: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._interval_s = reread_interval_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._value: RedisCredentials | None = None
        self._stale = False
        self._next_read_at = 0.0  # a read (or a failed one) is not repeated before this

    def current(self) -> RedisCredentials:
        """Raises redis.ConnectionError when they were never read and cannot be now."""
        with self._lock:
            now = self._monotonic()
            due = self._value is None or self._stale
            if due and now >= self._next_read_at:
                self._next_read_at = now + self._interval_s
                try:
                    self._value, self._stale = self._read(), False
                except Exception as exc:  # noqa: BLE001 - whatever the reader raised, Redis is unusable
                    log.warning("reading the Redis credentials failed: %s", exc)
                    if self._value is None:
                        raise redis.exceptions.ConnectionError("the Redis credentials cannot be read") from exc
            if self._value is None:
                raise redis.exceptions.ConnectionError("the Redis credentials cannot be read (retrying shortly)")
            return self._value

    def mark_stale(self) -> None:
        with self._lock:
            self._stale = True


class _Password(CredentialProvider):
    def __init__(self, cache: CredentialCache) -> None:
        self._cache = cache

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        password = self._cache.current().password
        return (password,) if password else ()  # type: ignore[return-value]  # () makes redis-py skip AUTH


def _refused_by_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _ReadsSecretsOnConnect:
    """Mixed into redis-py's connection classes (see the module doc)."""

    def __init__(self, *, secrets: CredentialCache, **kwargs: Any) -> None:
        self._secrets = secrets
        super().__init__(credential_provider=_Password(secrets), **kwargs)  # type: ignore[call-arg]

    def connect_check_health(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().connect_check_health(*args, **kwargs)  # type: ignore[misc]
        except redis.exceptions.ConnectionError as exc:
            if isinstance(exc, redis.exceptions.AuthenticationError) or _refused_by_tls(exc):
                log.warning("Redis refused our credentials (%s): they will be re-read", type(exc).__name__)
                self._secrets.mark_stale()
            raise


class _SecretAwareConnection(_ReadsSecretsOnConnect, redis.Connection):
    pass


class _SecretAwareSSLConnection(_ReadsSecretsOnConnect, redis.SSLConnection):
    def connect_check_health(self, *args: Any, **kwargs: Any) -> Any:
        self.ca_data = self._secrets.current().ca_pem  # the TLS handshake of this connect trusts it
        return super().connect_check_health(*args, **kwargs)


def connect(url: str, *, credentials: CredentialCache | None = None, timeout_s: float = 2.0,
            max_connections: int = 256, check_hostname: bool = True) -> redis.Redis:
    """A client over a pool to `url` (redis:// or rediss://), authenticating with `credentials`
    when given (the URL then carries no password). Over TLS the server's certificate must
    chain to the CA (always) and, with `check_hostname`, name the URL's host."""
    tls = url.startswith("rediss://")
    options: dict[str, Any] = {"ssl_check_hostname": check_hostname} if tls else {}
    if credentials is not None:
        options |= {"connection_class": _SecretAwareSSLConnection if tls else _SecretAwareConnection,
                    "secrets": credentials}
    pool = redis.ConnectionPool.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=30,
        max_connections=max_connections, **options,
    )
    return redis.Redis(connection_pool=pool)
