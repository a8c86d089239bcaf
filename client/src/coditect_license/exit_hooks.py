"""Release every open lease when the process ends: at exit, and on SIGTERM / SIGINT / SIGHUP.

The hooks chain to the handlers that were there before them. If the previous handler
was the default (die), every open lease is released and the process then dies of the
same signal (exit status unchanged). If the host installed its own handler, it runs and
decides (a `sys.exit` in it releases through `atexit`); an ignored signal stays ignored
and the seats are kept. Signal handlers can only be installed from the main thread;
from any other thread only `atexit` is registered. SIGKILL cannot be caught: that seat
frees itself when its lease expires.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import weakref
from typing import Any, Protocol

log = logging.getLogger("coditect_license")


class ClosableLease(Protocol):
    def close(self) -> bool: ...


_open_leases: weakref.WeakSet[ClosableLease] = weakref.WeakSet()
_registry_lock = threading.RLock()  # re-entered by a signal handler on the main thread
_atexit_installed = False
_previous_handlers: dict[int, Any] = {}


def release_at_exit(lease: ClosableLease, *, handle_signals: bool) -> None:
    """Close `lease` when the process ends (unless `forget` is called first); see the module doc."""
    with _registry_lock:
        _open_leases.add(lease)
    _install(handle_signals)


def forget(lease: ClosableLease) -> None:
    """`lease` needs nothing more at exit (closed, detached or returned)."""
    with _registry_lock:
        _open_leases.discard(lease)


def release_all(reason: str) -> None:
    with _registry_lock:
        leases = list(_open_leases)
    for lease in leases:
        try:
            log.info("releasing %r at %s", lease, reason)
            lease.close()
        except Exception:  # never let one lease stop the others (or the exit)
            log.exception("releasing a lease at %s failed", reason)


def _on_signal(signum: int, frame: Any) -> None:
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if previous is signal.SIG_IGN:
        return  # the host ignores this signal: the process goes on, and so does the lease
    if callable(previous):
        # The host's own handler (or Python's KeyboardInterrupt) decides whether the
        # process ends; if it does, `with` blocks and atexit release the seat.
        previous(signum, frame)
        return
    # Default action = die: release first, then die exactly as the default would.
    release_all(f"signal {signum}")
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install(handle_signals: bool) -> None:
    global _atexit_installed
    with _registry_lock:
        if not _atexit_installed:
            atexit.register(release_all, "exit")
            _atexit_installed = True
        if not handle_signals or threading.current_thread() is not threading.main_thread():
            return
        for name in ("SIGTERM", "SIGINT", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is None or signum in _previous_handlers:
                continue
            try:
                current = signal.getsignal(signum)
                if current is _on_signal:
                    continue
                signal.signal(signum, _on_signal)
                _previous_handlers[signum] = current
            except (ValueError, OSError):  # not the main thread of the main interpreter, or unsupported
                pass
