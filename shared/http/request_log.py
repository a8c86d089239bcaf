"""One structured JSON log line per request, in Cloud Logging's format.

Field names are a contract with the log-based metrics in terraform/: change them only
together. Never logged: license keys, tokens, emails, request bodies.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import flask

from shared.runtime import runtime

_write_lock = threading.Lock()


def _severity(status: int) -> str:
    if status >= 500:
        return "ERROR"
    if status >= 400:
        return "WARNING"
    return "INFO"


def write_request_log(
    request: flask.Request,
    *,
    function: str,
    route: str,
    status: int,
    outcome: str,
    latency_ms: float,
    fields: dict[str, Any],
) -> None:
    entry: dict[str, Any] = {
        "severity": _severity(status),
        "message": f"{function}{'/' + route if route else ''} {request.method} {status} {outcome}",
        "function": function,
        "outcome": outcome,
        "status": status,
        "latency_ms": round(latency_ms, 3),
        **fields,
    }
    trace_header = request.headers.get("X-Cloud-Trace-Context", "")
    trace_id = trace_header.split("/", 1)[0].strip()
    if trace_id and trace_id.isalnum() and len(trace_id) <= 64:
        entry["logging.googleapis.com/trace"] = f"projects/{runtime().settings.project_id}/traces/{trace_id}"
    line = json.dumps(entry, separators=(",", ":"), default=str)
    with _write_lock:  # threads of one worker share stdout: keep lines whole
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
