"""Webhook endpoints' signing secrets in Secret Manager (WEBHOOK_SECRET_PREFIX).

Apart from shared/google_secrets.py (which every Redis user imports to read Memorystore's
AUTH string and CA): only the admin function makes, rotates and deletes these, and only
its service account may (terraform/modules/functions: a condition on the name prefix).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import google_crc32c

from shared.google_retry import FAILURES, bounded_retry
from shared.google_secrets import SecretUnreadable

if TYPE_CHECKING:
    from google.cloud import secretmanager


class SecretWriter:
    """Makes, adds to and deletes secrets under one name prefix (the webhook endpoints'
    signing secrets: WEBHOOK_SECRET_PREFIX, projects/P/secrets/<env>-webhook-). The prefix is
    all IAM lets the caller touch (terraform/modules/functions: a condition on it)."""

    def __init__(self, client: secretmanager.SecretManagerServiceClient, prefix: str, *,
                 timeout_s: float = 10.0) -> None:
        project, _, start = prefix.partition("/secrets/")
        if not project.startswith("projects/") or not start:
            raise ValueError(f"{prefix!r} is not a secret name prefix (projects/P/secrets/<start>)")
        self._client = client
        self._project, self._start = project, start
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
