"""A real Redis of its own for the routing tests: an embedded redis-server, flushed per test.

Lighter than the shared ``stack`` fixture (no PostgreSQL, no simulator): the breakers need
nothing but Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis


@pytest.fixture
def redis_connect(lone_redis_url: str) -> Iterator[Callable[[], redis.Redis]]:
    """Opens clients to an empty database (one per simulated process); closes them after."""
    clients: list[redis.Redis] = []

    def connect() -> redis.Redis:
        client = redis.Redis.from_url(lone_redis_url)
        clients.append(client)
        return client

    connect().flushdb()
    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def redis_db(redis_connect: Callable[[], redis.Redis]) -> redis.Redis:
    return redis_connect()
