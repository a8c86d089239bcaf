"""The functions' Redis connection against a Redis run as Memorystore runs it.

AUTH string and CA come from the Secret Manager stand-in through the real client, as in
the cloud; a wrong one fails closed and a rotated one is picked up without a restart.
"""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from devstack.local_ca import LocalCa
from devstack.redis_server import MEMORYSTORE_BLOCKED, MemorystoreLikeRedis
from devstack.secret_manager_standin import SecretManagerStandIn
from shared.errors import BackendUnavailable
from shared.google_secrets import SecretReader, secret_manager_client
from shared.seats import SeatTable
from shared.seats.connection import CredentialCache, RedisCredentials, connect


@pytest.fixture(scope="module")
def server():
    memorystore = MemorystoreLikeRedis().start()
    yield memorystore
    memorystore.stop()


@pytest.fixture(scope="module")
def secrets():
    with SecretManagerStandIn() as standin:
        yield standin


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def connected(server, secrets, *, password: str, ca_pem: str, name: str, clock: Clock | None = None):
    """A client as the runtime builds it, over secrets named `name`-auth / `name`-ca."""
    auth = secrets.put("demo", f"{name}-auth", password)
    ca = secrets.put("demo", f"{name}-ca", ca_pem)
    reader = SecretReader(secret_manager_client(secrets.address))
    cache = CredentialCache(lambda: RedisCredentials(reader.text(auth), reader.text(ca)),
                            monotonic=clock or Clock())
    return connect(server.url, credentials=cache, timeout_s=1), auth, ca


def test_the_functions_connect_with_tls_and_auth_from_secret_manager(server, secrets):
    client, _, _ = connected(server, secrets, password=server.password, ca_pem=server.ca.pem, name="right")
    assert client.ping() and server.url.startswith("rediss://")


@pytest.mark.parametrize("command", MEMORYSTORE_BLOCKED)
def test_memorystores_blocked_commands_are_unknown(server, command):
    with pytest.raises(redis.ResponseError, match="unknown command"):
        server.endpoint.client().execute_command(command, "HELP")


def test_the_certificate_names_the_ip_so_hostname_checks_run(server):
    by_name = server.endpoint.client(socket_connect_timeout=1)
    by_name.connection_pool.connection_kwargs["host"] = "localhost"  # same server, another name
    with pytest.raises(redis.ConnectionError, match="Hostname mismatch"):
        by_name.ping()


def test_without_the_name_check_the_chain_to_the_instances_ca_still_decides(server, secrets):
    """REDIS_TLS_CHECK_HOSTNAME=0 (Terraform, until staging shows Memorystore's certificate
    names its IP): another name for the server connects, a certificate from another CA never."""
    by_name = server.url.replace("127.0.0.1", "localhost")
    for name, ca_pem, connects in (("name-right-ca", server.ca.pem, True), ("name-other-ca", LocalCa().pem, False)):
        auth = secrets.put("demo", f"{name}-auth", server.password)
        ca = secrets.put("demo", f"{name}-ca", ca_pem)
        reader = SecretReader(secret_manager_client(secrets.address))
        cache = CredentialCache(lambda auth=auth, ca=ca: RedisCredentials(reader.text(auth), reader.text(ca)))
        client = connect(by_name, credentials=cache, timeout_s=1, check_hostname=False)
        if connects:
            assert client.ping()
        else:
            with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
                client.ping()
    checked = connect(by_name, credentials=CredentialCache(lambda: RedisCredentials(server.password, server.ca.pem)),
                      timeout_s=1)
    with pytest.raises(redis.ConnectionError, match="Hostname mismatch"):
        checked.ping()


def test_no_plaintext_port_and_no_access_without_auth(server):
    plain = redis.Redis(port=server.port, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.ConnectionError):
        plain.ping()
    anonymous = redis.Redis.from_url(server.url, ssl_ca_data=server.ca.pem)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()


@pytest.mark.parametrize("wrong", ["auth", "ca"])
def test_a_wrong_secret_fails_closed_and_a_rotated_one_is_picked_up(server, secrets, wrong):
    clock = Clock()
    client, auth, ca = connected(
        server, secrets, clock=clock, name=f"rotate-{wrong}",
        password="not-the-auth-string" if wrong == "auth" else server.password,
        ca_pem=LocalCa("Someone else's CA").pem if wrong == "ca" else server.ca.pem)
    seats = SeatTable(client)
    with pytest.raises(BackendUnavailable):  # every seat operation: 503 naming redis
        seats.live_count("some-license", now_ms=0)
    secrets.put("demo", f"rotate-{wrong}-{wrong}", server.password if wrong == "auth" else server.ca.pem)
    with pytest.raises(BackendUnavailable):
        seats.live_count("some-license", now_ms=0)  # read moments ago: not re-read yet (no hammering)
    clock.now += 5
    assert seats.live_count("some-license", now_ms=0) == 0


def test_a_secret_that_cannot_be_read_fails_closed_until_it_can(server, secrets):
    clock = Clock()
    reader = SecretReader(secret_manager_client(secrets.address), timeout_s=1)
    auth = "projects/demo/secrets/late-auth"
    cache = CredentialCache(lambda: RedisCredentials(reader.text(auth), server.ca.pem), monotonic=clock)
    seats = SeatTable(connect(server.url, credentials=cache, timeout_s=1))
    with pytest.raises(BackendUnavailable):
        seats.live_count("some-license", now_ms=0)
    secrets.put("demo", "late-auth", server.password)
    clock.now += 5
    assert seats.live_count("some-license", now_ms=0) == 0
