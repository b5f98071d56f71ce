"""The rate-limit tests' Redis: the session's Redis-only server, flushed for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from app.ratelimit import TokenBuckets


@pytest.fixture
def rl_client(lone_redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(lone_redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def buckets(rl_client: redis.Redis) -> TokenBuckets:
    """Exact arithmetic: no send jitter allowance (tested on its own)."""
    return TokenBuckets(rl_client, send_jitter_s=0.0)
