"""Sending one webhook delivery over HTTP(S), to exactly the address that was checked.

The deliverer resolves the endpoint's host and checks every address first (shared/domain/
webhooks.py resolve_and_check); this connects to one of those addresses and no other, with
the URL's host as the TLS server name (the certificate is verified for it) and as the Host
header: a DNS answer that changes between the check and the connection (rebinding) cannot
send the request elsewhere. Redirects are never followed (their target was not checked),
and at most a few kilobytes of the answer are read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

_ANSWER_BYTES = 2048


@dataclass(frozen=True)
class Sent:
    status: int | None  # None: no answer (timeout, refused, reset, TLS failure)
    error: str | None  # what went wrong, in a line (no secret, no body of ours)
    latency_ms: int


class WebhookSender:
    def __init__(self, *, timeout_s: float = 10.0):
        self._timeout = urllib3.Timeout(connect=min(5.0, timeout_s), read=timeout_s)

    def post(self, url: str, address: str, body: bytes, headers: dict[str, str]) -> Sent:
        parts = urlsplit(url)
        host = parts.hostname or ""
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        pool: urllib3.HTTPConnectionPool
        if secure:
            pool = urllib3.HTTPSConnectionPool(address, port, timeout=self._timeout, retries=False,
                                               server_hostname=host, assert_hostname=host,
                                               cert_reqs="CERT_REQUIRED")
        else:  # the local stack's loopback receivers only (WEBHOOK_ALLOW_PRIVATE)
            pool = urllib3.HTTPConnectionPool(address, port, timeout=self._timeout, retries=False)
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        started = time.perf_counter()
        try:
            answer = pool.urlopen("POST", path, body=body, headers={**headers, "Host": host_header},
                                  redirect=False, preload_content=False, assert_same_host=False)
            try:
                answer.read(_ANSWER_BYTES)
            finally:
                answer.release_conn()
            return Sent(answer.status, None if 200 <= answer.status < 300 else f"answered {answer.status}",
                        round((time.perf_counter() - started) * 1000))
        except urllib3.exceptions.HTTPError as exc:
            return Sent(None, f"{type(exc).__name__}: {str(exc)[:200]}", round((time.perf_counter() - started) * 1000))
        finally:
            pool.close()
