"""Reading secrets from Secret Manager with Google's client, as the functions do in the cloud.

Terraform gives a function the *names* of the secrets it reads (e.g. REDIS_AUTH_SECRET =
projects/P/secrets/S) and grants it secretAccessor on exactly those; the values never
pass through Terraform's outputs or the function's environment. Locally the same client
talks to the dev stack's gRPC stand-in (scripts/devstack/secret_manager_standin.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import google_crc32c

from shared.errors import BackendUnavailable
from shared.google_retry import FAILURES, bounded_retry

if TYPE_CHECKING:
    from google.cloud import secretmanager

_SECRET = re.compile(r"^projects/[^/]+/secrets/[^/]+$")
_VERSION = re.compile(r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$")


class SecretUnreadable(BackendUnavailable):
    """The secret could not be read (or written): missing, no enabled version, no permission,
    unreachable, or corrupted in transit. A caller is told only that Secret Manager is
    unavailable (503); str() of it, for the log, names the secret and why, never its value."""

    def __init__(self, detail: str):
        super().__init__("secret-manager")
        self.args = (detail,)


def version_name(secret: str) -> str:
    """projects/P/secrets/S -> .../versions/latest; a full version name is kept as given."""
    if _VERSION.match(secret):
        return secret
    if _SECRET.match(secret):
        return f"{secret}/versions/latest"
    raise ValueError(f"{secret!r} is not a Secret Manager secret (projects/P/secrets/S[/versions/V])")


def secret_manager_client(endpoint: str | None = None) -> secretmanager.SecretManagerServiceClient:
    """The real client; `endpoint` (host:port, plaintext) points it at the local stand-in."""
    from google.cloud import secretmanager

    if endpoint is None:
        return secretmanager.SecretManagerServiceClient()
    import grpc
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    return secretmanager.SecretManagerServiceClient(
        transport=SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(endpoint))
    )


class SecretReader:
    """Reads one secret version's payload as text, checking its CRC32C as Google advises."""

    def __init__(self, client: secretmanager.SecretManagerServiceClient, *, timeout_s: float = 10.0) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._retry = bounded_retry(timeout_s)  # a Redis connect waits on this read

    def text(self, secret: str) -> str:
        """The payload of `secret` (a secret, meaning its latest version, or one version).

        Raises:
            SecretUnreadable: as the class says.
        """
        name = version_name(secret)
        try:
            answer = self._client.access_secret_version(request={"name": name}, retry=self._retry,
                                                        timeout=self._timeout_s)
        except FAILURES as exc:
            raise SecretUnreadable(f"cannot read {name}: {type(exc).__name__}") from exc
        return payload_text(name, answer.payload)


def payload_text(name: str, payload: secretmanager.SecretPayload) -> str:
    """An accessed version's payload as text, once its CRC32C (when it has one) matches."""
    data = payload.data
    # An optional field: present when the version was added with a checksum.
    if "data_crc32c" in payload and payload.data_crc32c != google_crc32c.value(data):
        raise SecretUnreadable(f"{name} arrived corrupted (CRC32C mismatch)")
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise SecretUnreadable(f"{name} is not UTF-8 text") from exc

