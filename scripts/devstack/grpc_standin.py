"""What every local stand-in for a Google API shares: a real gRPC server on loopback.

A stand-in (kms_standin.py, scheduler_standin.py) names its service and its unary
methods; this serves them to the real google-cloud-* client, whose transport channel
points here instead of at Google, so production code runs unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc

Self = TypeVar("Self", bound="GrpcStandIn")


def unary(fn: Callable[[Any, grpc.ServicerContext], Any], request: Any, response: Any) -> grpc.RpcMethodHandler:
    """One unary method: `fn(request, context) -> response`, proto-plus classes on the wire."""
    return grpc.unary_unary_rpc_method_handler(
        fn, request_deserializer=request.deserialize, response_serializer=response.serialize)


class GrpcStandIn:
    """A gRPC server for one service; subclasses give `service` and `handlers()`."""

    service: str

    def __init__(self, *, port: int = 0, workers: int = 8) -> None:
        self._requested_port = port
        self._workers = workers
        self._port: int | None = None
        self._server: grpc.Server | None = None

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        raise NotImplementedError

    def start(self: Self) -> Self:
        server = grpc.server(ThreadPoolExecutor(max_workers=self._workers))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(self.service, self.handlers()),))
        port = server.add_insecure_port(f"127.0.0.1:{self._requested_port}")
        if not port:  # older grpc signals a failed bind with 0 instead of raising
            raise RuntimeError(f"cannot bind 127.0.0.1:{self._requested_port} for {self.service}")
        server.start()
        self._server, self._port = server, port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=1).wait()
            self._server = None

    def __enter__(self: Self) -> Self:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        if self._port is None:
            raise RuntimeError(f"the {self.service} stand-in is not started")
        return f"127.0.0.1:{self._port}"
