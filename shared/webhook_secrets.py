"""Webhook endpoints' signing secrets in Secret Manager (WEBHOOK_SECRET_PREFIX).

Apart from shared/google_secrets.py (which every Redis user imports to read Memorystore's
AUTH string and CA): only the admin function makes, rotates and deletes these, and only
its service account may; the admin (a test event) and notify functions read them to sign
deliveries (terraform/modules/functions: grants under a condition on the name prefix).
tests/unit/test_iam_permissions.py tells these reads from the Redis secrets' by this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import google_crc32c

from shared.google_retry import FAILURES, bounded_retry
from shared.google_secrets import SecretUnreadable, payload_text, version_name

if TYPE_CHECKING:
    from google.cloud import secretmanager


def _split(prefix: str) -> tuple[str, str]:
    """projects/P/secrets/<start> -> (projects/P, <start>)."""
    project, _, start = prefix.partition("/secrets/")
    if not project.startswith("projects/") or "/" in project.removeprefix("projects/") or not start \
            or "/" in start:
        raise ValueError(f"{prefix!r} is not a secret name prefix (projects/P/secrets/<start>)")
    return project, start


class SigningSecretReader:
    """Reads signing secrets' versions, and only those under the prefix: a version name from
    elsewhere (a damaged or forged endpoint record) is refused before any request."""

    def __init__(self, client: secretmanager.SecretManagerServiceClient, prefix: str, *,
                 timeout_s: float = 10.0) -> None:
        _split(prefix)
        self._client = client
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._retry = bounded_retry(timeout_s)

    def text(self, secret: str) -> str:
        """The payload of one of the signing secrets' versions.

        Raises:
            SecretUnreadable: unreadable, or not under the prefix.
        """
        name = version_name(secret)
        suffix = name.removeprefix(self._prefix)
        if suffix == name or not suffix.split("/", 1)[0]:
            raise SecretUnreadable(f"{name} is not a webhook signing secret (outside {self._prefix})")
        try:
            answer = self._client.access_secret_version(request={"name": name}, retry=self._retry,
                                                        timeout=self._timeout_s)
        except FAILURES as exc:
            raise SecretUnreadable(f"cannot read {name}: {type(exc).__name__}") from exc
        return payload_text(name, answer.payload)


class SecretWriter:
    """Makes, adds to and deletes secrets under one name prefix (the webhook endpoints'
    signing secrets: WEBHOOK_SECRET_PREFIX, projects/P/secrets/<env>-webhook-). The prefix is
    all IAM lets the caller touch (terraform/modules/functions: a condition on it)."""

    def __init__(self, client: secretmanager.SecretManagerServiceClient, prefix: str, *,
                 timeout_s: float = 10.0) -> None:
        self._client = client
        self._project, self._start = _split(prefix)
        self._timeout_s = timeout_s
        self._retry = bounded_retry(timeout_s)

    def _name(self, suffix: str) -> str:
        return f"{self._project}/secrets/{self._start}{suffix}"

    def create(self, suffix: str, value: str) -> str:
        """A new secret holding `value`: the name of its first version."""
        try:
            self._client.create_secret(request={"parent": self._project, "secret_id": f"{self._start}{suffix}",
                                                "secret": {"replication": {"automatic": {}}}},
                                       retry=self._retry, timeout=self._timeout_s)
        except FAILURES as exc:
            raise SecretUnreadable(f"cannot create {self._name(suffix)}: {type(exc).__name__}") from exc
        return self.add(suffix, value)

    def add(self, suffix: str, value: str) -> str:
        """A new version of the secret: its name."""
        data = value.encode()
        try:
            version = self._client.add_secret_version(
                request={"parent": self._name(suffix),
                         "payload": {"data": data, "data_crc32c": google_crc32c.value(data)}},
                retry=self._retry, timeout=self._timeout_s)
        except FAILURES as exc:
            raise SecretUnreadable(f"cannot add a version to {self._name(suffix)}: {type(exc).__name__}") from exc
        return str(version.name)

    def delete(self, suffix: str) -> None:
        """Delete the secret and all its versions (gone already: nothing to do)."""
        from google.api_core import exceptions as google_exceptions

        try:
            self._client.delete_secret(request={"name": self._name(suffix)}, retry=self._retry,
                                       timeout=self._timeout_s)
        except google_exceptions.NotFound:
            return
        except FAILURES as exc:
            raise SecretUnreadable(f"cannot delete {self._name(suffix)}: {type(exc).__name__}") from exc
