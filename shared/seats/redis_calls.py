"""The seats adapter's boundary with redis-py: scripts loaded once, errors translated once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any, Protocol

import redis

from shared.errors import BackendUnavailable


class RedisLike(Protocol):
    """What the seats adapter calls on a redis-py client (plain or cluster)."""

    def register_script(self, script: str) -> Any: ...

    def get(self, name: str) -> Any: ...

    def set(self, name: str, value: str, *, nx: bool = ..., px: int | None = ...) -> Any: ...

    def incr(self, name: str) -> Any: ...

    def getdel(self, name: str) -> Any: ...

    def exists(self, *names: str) -> Any: ...

    def sadd(self, name: str, *values: str) -> Any: ...

    def srem(self, name: str, *values: str) -> Any: ...

    def smembers(self, name: str) -> Any: ...

    def zcount(self, name: str, min: str, max: str) -> Any: ...

    def zrangebyscore(self, name: str, min: str, max: str, start: int | None = ..., num: int | None = ...,
                      withscores: bool = ...) -> Any: ...

    def hmget(self, name: str, keys: list[Any]) -> Any: ...

    def hgetall(self, name: str) -> Any: ...

    def hset(self, name: str, key: str, value: Any) -> Any: ...

    def hdel(self, name: str, *keys: str) -> Any: ...

    def pipeline(self, transaction: bool = ...) -> Any: ...

    def info(self, section: str | None = ...) -> Any: ...


@contextmanager
def redis_unavailable() -> Iterator[None]:
    """Turn redis-py's connection failures into BackendUnavailable (503, backend=redis)."""
    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise BackendUnavailable("redis") from exc


def load_script(name: str, *, with_prelude: bool = True) -> str:
    """A Lua script of lua/, with the shared prelude prepended (a Redis script cannot include another)."""
    lua = resources.files("shared.seats") / "lua"
    body = (lua / f"{name}.lua").read_text()
    return (lua / "_prelude.lua").read_text() + "\n" + body if with_prelude else body


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
