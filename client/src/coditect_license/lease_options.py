"""The rarely needed settings of a lease, in one typed object with documented defaults.

    Lease(KEY, server=URL, token_provider=ids, trusted_roots=ROOTS,
          options=LeaseOptions(client_version="mytool/2.3", handle_signals=False))

The settings most tools need (`server`, `token_provider`, `trusted_roots`,
`hardware_id`, the callbacks) are keyword arguments of `Lease` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from coditect_license.transport import RetryPolicy


@dataclass(frozen=True)
class LeaseOptions:
    """How a lease talks to the server, what it tells it, and what it does on its own.

    Attributes:
        client_version: sent with every acquire and shown to administrators (at most 64
            characters); "" sends `coditect-license/<SDK version>`. Tools should say
            their own name and version, e.g. "mytool/2.3".
        hostname: sent with every acquire (at most 255 characters); None sends
            `socket.gethostname()`, "" an empty one.
        timeout_s: seconds per request (connecting: at most 5 s of it).
        retry: how `acquire()` retries an unanswered request (attempts, backoff,
            deadline). Release, borrow and return use short fixed policies; the
            heartbeat thread makes single tries on its own schedule.
        expiring_warning_s: how long before a lease that cannot be renewed (or a
            borrow) runs out `on_expiring` is called; None: a third of the lease, 2-60 s.
        handle_signals: install SIGTERM / SIGINT / SIGHUP handlers that release the
            seat and then chain to the previous handler (main thread only).
        release_at_exit: release the seat at interpreter exit (`atexit`) and on those
            signals. False leaves it to `close()` or the lease's expiry.
        use_borrow: on acquire, resume a borrow of this key stored on this machine
            (README "Borrowing") instead of taking a seat.
        jwks: the root keys themselves (a JWKS dict), handed over by the tool: a trust
            anchor like `trusted_roots`, for tools that ship keys rather than thumbprints.
        issuer: require lease tokens to carry this `iss`; None accepts any.
        verify: TLS verification, as httpx takes it: True (system CAs), a CA bundle
            path, or an `ssl.SSLContext`. False only for tests.
        transport: an `httpx.BaseTransport` for every request (proxies, mounts, tests).
    """

    client_version: str = ""
    hostname: str | None = None
    timeout_s: float = 10.0
    retry: RetryPolicy = RetryPolicy()
    expiring_warning_s: float | None = None
    handle_signals: bool = True
    release_at_exit: bool = True
    use_borrow: bool = True
    jwks: dict[str, Any] | None = None
    issuer: str | None = None
    verify: Any = True
    transport: httpx.BaseTransport | None = None
