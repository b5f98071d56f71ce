"""A real Redis for the rate-limit tests: one embedded redis-server a session, flushed per test."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app.embedded import EmbeddedRedis
from app.ratelimit import TokenBuckets


@pytest.fixture(scope="session")
def rl_redis_url() -> Iterator[str]:
    directory = Path(tempfile.mkdtemp(prefix="switchboard-rl-"))
    server = EmbeddedRedis(directory)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def rl_client(rl_redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(rl_redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def buckets(rl_client: redis.Redis) -> TokenBuckets:
    """Exact arithmetic: no send jitter allowance (tested on its own)."""
    return TokenBuckets(rl_client, send_jitter_s=0.0)
