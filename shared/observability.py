"""Per-request log fields that any layer may add (tenant, license, session).

The HTTP layer opens a context per request and writes it out as the request's one
structured log line; use cases call `annotate()` without knowing about HTTP.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
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


class _CloudLoggingFormatter(logging.Formatter):
    """Python log records as Cloud Logging JSON lines (severity, message, extras)."""

    _STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"severity": record.levelname, "message": record.getMessage(), "logger": record.name}
        entry.update({k: v for k, v in vars(record).items() if k not in self._STANDARD})
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), default=str)


_configured = False


def configure_logging(level: int = logging.INFO) -> None:
    """Send the library's logging to stdout as JSON, once per process."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_CloudLoggingFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("urllib3", "google", "grpc", "cachecontrol"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True
