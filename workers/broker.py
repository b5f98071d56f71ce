"""kombu's Redis transport, reusing one Redis client per channel for synchronous commands.

kombu builds a new ``redis.Redis`` object for every reservation and every acknowledgement of a
message (``Channel._create_client``); with redis-py 8 that construction is a measurable share
of a worker's CPU at hundreds of jobs a second. ``redis.Redis`` is thread-safe over its
connection pool, so one instance per channel, on the same pool, does the same work.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        if self._sync_client is None:
            self._sync_client = super()._create_client(asynchronous=False)  # type: ignore[misc]
        return self._sync_client


class Transport(kombu_redis.Transport):
    Channel = Channel
