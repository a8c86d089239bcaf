"""Retries: 5xx and 429 answers with backoff (Retry-After honoured), then the typed error.

The license server never answers 5xx on purpose, so a small HTTP server of this test
plays an overloaded one: it answers a scripted sequence of statuses.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from coditect_license import ApiClient, RateLimited, RetryPolicy, ServiceUnavailable, StaticTokenProvider
from coditect_license.errors import NoSeatAvailable


@pytest.fixture
def scripted():
    answers: list = []
    seen: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # the name http.server dispatches POST to
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append((time.monotonic(), self.headers.get("Authorization")))
            status, body, headers = answers.pop(0) if answers else (200, {"status": "ok"}, {})
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", answers, seen
    server.shutdown()


def _error(code, **details):
    return {"error": {"code": code, "message": code.lower(), **details}}


def test_5xx_and_429_are_retried_with_backoff(scripted):
    url, answers, seen = scripted
    answers += [(503, _error("UNAVAILABLE"), {"Retry-After": "1"}), (502, {}, {}),
                (429, _error("RATE_LIMITED"), {"Retry-After": "1"})]
    client = ApiClient(url, StaticTokenProvider("t"), retry=RetryPolicy(attempts=5, base_s=0.1, cap_s=2))

    assert client.post("heartbeat", {"session_id": "s"}) == {"status": "ok"}

    gaps = [b[0] - a[0] for a, b in zip(seen, seen[1:], strict=False)]
    assert len(seen) == 4 and gaps[0] >= 1.0 and gaps[2] >= 1.0  # Retry-After: 1 honoured
    assert all(auth == "Bearer t" for _, auth in seen)


def test_a_seat_table_being_rebuilt_after_a_redis_loss_is_waited_out(scripted):
    # the server's answer while another instance rebuilds the license's table (README,
    # "What a Redis loss does"): retried after Retry-After, the same request then succeeds
    url, answers, seen = scripted
    answers += [(503, _error("UNAVAILABLE", backend="redis", rebuilding=True), {"Retry-After": "1"})] * 2
    client = ApiClient(url, StaticTokenProvider("t"), retry=RetryPolicy(attempts=5, base_s=0.1, cap_s=2))

    assert client.post("acquire", {"license_key": "k", "hardware_id": "h"}) == {"status": "ok"}
    assert len(seen) == 3 and seen[2][0] - seen[0][0] >= 2.0


def test_retries_end_in_the_typed_error_and_business_answers_are_not_retried(scripted):
    url, answers, seen = scripted
    client = ApiClient(url, StaticTokenProvider("t"), retry=RetryPolicy(attempts=3, base_s=0.05, cap_s=0.1))
    answers += [(503, _error("UNAVAILABLE"), {})] * 3
    with pytest.raises(ServiceUnavailable):
        client.post("acquire", {})
    assert len(seen) == 3

    answers += [(409, _error("NO_SEAT_AVAILABLE", seats={"used": 3, "max": 3}), {"Retry-After": "42"})]
    with pytest.raises(NoSeatAvailable) as full:
        client.post("acquire", {})
    assert len(seen) == 4 and (full.value.seats_used, full.value.seats_max, full.value.retry_after) == (3, 3, 42)

    answers += [(429, _error("RATE_LIMITED"), {"Retry-After": "30"})]
    started = time.monotonic()
    with pytest.raises(RateLimited):  # waiting 30 s would pass the deadline: said at once
        client.call("POST", "acquire", {}, retry=RetryPolicy(attempts=3, deadline_s=5))
    assert time.monotonic() - started < 2
