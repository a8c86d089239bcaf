"""Per-request log fields that any layer may add (tenant, license, session).

The HTTP layer opens a context per request and writes it out as the request's one
structured log line; use cases call `annotate()` without knowing about HTTP.
"""

from __future__ import annotations

import contextvars
from typing import Any

_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("request_log_fields", default=None)


def open_request_context() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    _fields.set(fields)
    return fields


def annotate(**fields: Any) -> None:
    """Add fields to the current request's log line (no-op outside a request)."""
    current = _fields.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})
