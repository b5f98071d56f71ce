"""The worker's side of the relay: a streaming job's call, its deltas published as they come,
and the end of a job a caller waits for on its request.

A job streams when its stored request says so (``"stream": true``, written only by the chat
endpoint for a ``stream: true`` request) and it is not part of a batch. A job is awaited when
it streams or its request says ``"awaited": true`` (the endpoints that answer on the request);
once its end is recorded, one ``JobEnded`` entry tells the waiting API. Every other job —
``POST /v1/jobs``, every batch line — never touches this module: no Redis round trip for it.

Publishing never decides the job's fate: Postgres does. A Redis that fails mid-stream stops
the publishing for the rest of the attempt (logged once) while the call goes on and is
recorded as usual; the API, hearing nothing more, falls back to the job's row.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import redis
from redis.exceptions import RedisError

from app.constants import STREAM_TTL_S
from app.providers.errors import ProviderError
from app.providers.streaming import Streamed, stream_chat
from app.providers.types import Adapter, ChatCall, Delta
from app.relay.events import (
    FIELD,
    AttemptDeltas,
    AttemptDone,
    AttemptFailed,
    AttemptId,
    AttemptStarted,
    Event,
    JobEnded,
    encode,
    stream_key,
)

log = logging.getLogger(__name__)

STREAM_FLAG = "stream"  # the key of the stored request that asks for a live stream
AWAITED_FLAG = "awaited"  # ... that says a caller waits on the request for the job's end


def wants_stream(request: dict[str, Any], batch_id: str | None) -> bool:
    """Whether a job's call is made streaming, its deltas published: batch lines never are."""
    return batch_id is None and request.get(STREAM_FLAG) is True


def awaited(request: dict[str, Any], batch_id: str | None) -> bool:
    """Whether a caller waits on the request for the job's end (and so hears of it)."""
    return wants_stream(request, batch_id) or (
        batch_id is None and request.get(AWAITED_FLAG) is True
    )


class StreamPublisher:
    """Makes streaming calls and publishes each attempt's events to its job's stream."""

    def __init__(self, client: redis.Redis, *, ttl_s: int = STREAM_TTL_S) -> None:
        self._redis = client
        self._ttl_s = ttl_s

    def call(
        self,
        http: httpx.Client,
        adapter: Adapter,
        call: ChatCall,
        *,
        timeout: float,
        job_id: str,
        attempt: AttemptId,
        model: str,
        provider: str,
    ) -> Streamed:
        """``stream_chat``, its start, deltas and end published; raises what it raises."""
        channel = _Channel(self._redis, stream_key(job_id), self._ttl_s)

        def deltas(batch: list[Delta]) -> None:
            channel.publish(AttemptDeltas(attempt, tuple(batch)))

        try:
            streamed = stream_chat(
                http,
                adapter,
                call,
                timeout=timeout,
                on_start=lambda: channel.publish(AttemptStarted(attempt, model, provider)),
                on_deltas=deltas,
            )
        except ProviderError as err:
            channel.publish(AttemptFailed(attempt, err.kind, err.message))
            raise
        except Exception as exc:  # not the provider's failure, but the attempt is over
            channel.publish(AttemptFailed(attempt, "unknown", type(exc).__name__))
            raise
        channel.publish(AttemptDone(attempt))
        return streamed

    def ended(self, job_id: str, attempt: AttemptId, status: str) -> None:
        """Tell the caller waiting for ``job_id`` that its end is recorded (never raises)."""
        _Channel(self._redis, stream_key(job_id), self._ttl_s).publish(JobEnded(attempt, status))


class _Channel:
    """One attempt's writes: each appends an entry and renews the stream's TTL, in one round
    trip; after a Redis failure, nothing more is tried."""

    def __init__(self, client: redis.Redis, key: str, ttl_s: int) -> None:
        self._redis = client
        self._key = key
        self._ttl_s = ttl_s
        self._broken = False

    def publish(self, event: Event) -> None:
        if self._broken:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.xadd(self._key, {FIELD: encode(event)})
            pipe.expire(self._key, self._ttl_s)
            pipe.execute()
        except RedisError as exc:
            self._broken = True
            log.warning("%s: not relayed any more (%s); the job goes on", self._key, exc)
