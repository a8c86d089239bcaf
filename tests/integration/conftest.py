"""Fixtures of the script-level tests: one Redis 7 per module and a SeatTable over it.

A module that needs another server (test_seat_scripts.py: 6.2 and 7, and a cluster;
test_redis_connection.py: Memorystore-like) defines its own `server`, which takes precedence.
"""

from __future__ import annotations

import pytest
import redis

from devstack.redis_server import DEBIAN_REDIS_7, RedisServer
from shared.seats import SeatTable


@pytest.fixture(scope="module")
def server():
    srv = RedisServer(DEBIAN_REDIS_7).start()
    yield redis.Redis.from_url(srv.url)
    srv.stop()


@pytest.fixture
def table(server):
    return SeatTable(server)
