"""What every Firestore repository here does with a call: bound it, retry it briefly, and
report a transient failure as BackendUnavailable (the caller answers 503)."""

from __future__ import annotations

from typing import Any

from google.api_core import retry as google_retry
from google.cloud import firestore

from shared.errors import BackendUnavailable
from shared.store.firestore_store import TRANSIENT_ERRORS


class BoundedCalls:
    def __init__(self, client: firestore.Client, *, timeout_s: float = 10.0):
        self._db = client
        self._timeout_s = timeout_s
        self._retry = google_retry.Retry(initial=0.1, maximum=1.0, timeout=timeout_s)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TRANSIENT_ERRORS as exc:
            raise BackendUnavailable("firestore") from exc

    def _stream(self, query: firestore.Query) -> list[tuple[str, dict[str, Any]]]:
        """(document id, fields) of every document a query answers."""
        return self._call(lambda: [(snap.id, snap.to_dict() or {})
                                   for snap in query.stream(timeout=self._timeout_s, retry=self._retry)])
