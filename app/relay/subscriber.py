"""The API's side of the relay: a job's events read from the start of its stream, blocking.

Each relayed job holds one blocking ``XREAD`` at a time on the API's own asyncio Redis
client, so a waiting request costs a socket, not a thread. Reading from the first entry
(``0-0``), not from "new entries only" as pub/sub would, means nothing a worker published
before the reader arrived is lost. A Redis that fails reads as silence: the caller then
learns the job's end from its row.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import redis.asyncio
from redis.exceptions import RedisError

from app.relay.events import FIELD, Event, decode, stream_key

log = logging.getLogger(__name__)

READ_COUNT = 512  # entries per read: a stream that is already long comes in a few reads


class StreamSubscriber:
    """The API process's reader of job streams, over a client of its own."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._redis = client

    @classmethod
    def from_url(cls, url: str) -> StreamSubscriber:
        return cls(redis.asyncio.Redis.from_url(url, health_check_interval=30))

    def subscribe(self, job_id: str) -> Subscription:
        return Subscription(self._redis, job_id)

    async def close(self) -> None:
        await self._redis.aclose()


class Subscription:
    """One job's events, in order, from the first."""

    def __init__(self, client: redis.asyncio.Redis, job_id: str) -> None:
        self._redis = client
        self._key = stream_key(job_id)
        self._last: bytes = b"0-0"

    async def read(self, block_s: float) -> list[Event]:
        """The events after the last read, waiting up to ``block_s`` for the first of them."""
        reply: Any  # [(key, [(entry id, {field: value})])], or None when nothing came
        try:
            reply = await self._redis.xread(
                {self._key: self._last}, count=READ_COUNT, block=max(1, round(block_s * 1000))
            )
        except RedisError as exc:
            log.warning("%s: read failed (%s); relying on the job's row", self._key, exc)
            await anyio.sleep(block_s)
            return []
        events: list[Event] = []
        for _key, entries in reply or ():
            for entry_id, fields in entries:
                self._last = entry_id
                event = decode(fields.get(FIELD))
                if event is not None:
                    events.append(event)
        return events
