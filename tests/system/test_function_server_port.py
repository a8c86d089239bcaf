"""A function server never shares its port: a second stack on a busy port is refused.

With SO_REUSEPORT (gunicorn's --reuse-port) a second server bound the same port and the
kernel split connections between two unrelated stacks, each answering with its own data.
"""

from __future__ import annotations

import errno
import socket

import httpx
import pytest

from devstack.processes import PortInUse


def _port(server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def test_a_second_function_server_on_a_busy_port_is_refused(stack, function_server):
    port = _port(function_server)

    with pytest.raises(PortInUse, match=f"port {port} on 127.0.0.1 is already in use"):
        stack.serve_functions(port, workers=1, threads=1)

    # and the first server still answers every connection on it
    for _ in range(12):
        with httpx.Client(base_url=function_server.base_url, timeout=10) as client:  # a new connection each
            assert client.get("/health").status_code == 200


def test_the_function_server_does_not_offer_its_port_for_sharing(function_server):
    # a socket asking to share the port (SO_REUSEPORT, same user) is refused by the kernel
    with socket.socket() as sharer:
        sharer.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with pytest.raises(OSError) as refused:
            sharer.bind(("127.0.0.1", _port(function_server)))
    assert refused.value.errno == errno.EADDRINUSE


def test_a_port_any_other_program_listens_on_is_refused(stack):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {port} "):
            stack.serve_functions(port, workers=1, threads=1)
