"""Invariant 7 and the log contract: one structured line per request, no secrets."""

from __future__ import annotations

import json
import time

import httpx


def test_each_request_logs_one_structured_line_without_keys_tokens_or_emails(function_server, make_license, id_token):
    lic = make_license()
    token = id_token("logged-user", email="logged-user@secret.example")
    headers = {"Authorization": f"Bearer {token}", "X-Cloud-Trace-Context": "0123456789abcdef0123456789abcdef/1;o=1"}
    with httpx.Client(base_url=function_server.base_url, headers=headers, timeout=10) as client:
        acquired = client.post("/acquire", json={"license_key": lic.key, "hardware_id": "hw"}).json()
        client.post("/heartbeat", json={"session_id": acquired["session_id"]})
        client.post("/acquire", json={"license_key": "CDT-NOPE", "hardware_id": "hw"})
    time.sleep(0.3)

    text = function_server.log_path.read_text()
    for secret in (lic.key, token, acquired["token"], "logged-user@secret.example"):
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    mine = [entry for entry in lines if entry.get("license") == lic.license_id or
            (entry.get("function") == "acquire" and entry.get("outcome") == "LICENSE_NOT_FOUND")]
    acquire_line = next(e for e in mine if e["function"] == "acquire" and e["outcome"] == "OK")
    assert acquire_line["severity"] == "INFO" and acquire_line["status"] == 201
    assert acquire_line["tenant"] == lic.tenant_id and acquire_line["session"] == acquired["session_id"]
    assert acquire_line["latency_ms"] > 0
    assert acquire_line["logging.googleapis.com/trace"] == (
        "projects/demo-coditect/traces/0123456789abcdef0123456789abcdef")
    assert any(e["function"] == "heartbeat" and e["outcome"] == "OK" for e in mine)
    assert any(e["outcome"] == "LICENSE_NOT_FOUND" and e["severity"] == "WARNING" for e in mine)
