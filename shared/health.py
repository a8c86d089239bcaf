"""Readiness: can this instance reach the backends a seat operation needs?"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def readiness(rt) -> dict[str, Any]:
    """{"status": "ok"|"unavailable", "checks": {"redis": ..., "firestore": ...}}."""
    checks: dict[str, str] = {}
    probes = {"redis": lambda: rt.redis.ping(), "firestore": lambda: rt.store.ping()}
    for name, probe in probes.items():
        try:
            probe()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", named
            log.warning("readiness check %s failed: %s", name, type(exc).__name__)
            checks[name] = "unavailable"
    ok = all(v == "ok" for v in checks.values())
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "checks": checks}
    if not ok:
        failing = ", ".join(k for k, v in checks.items() if v != "ok")
        body["error"] = {"code": "UNAVAILABLE", "message": f"not ready: {failing} unreachable"}
    return body
