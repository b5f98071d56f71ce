"""Waiting on the request for a job's end: woken by the worker's ``JobEnded``, and never
missing an end nobody announced (real Postgres and Redis; the job's end written by hand)."""

from __future__ import annotations

import asyncio

import anyio
import redis
from sqlalchemy import Engine

from app.chat.waiting import job_end
from app.config import Settings
from app.db.engine import make_sessionmaker
from app.db.tables import JobRow
from app.relay.events import AttemptId, JobEnded
from app.relay.subscriber import StreamSubscriber
from tests.chat.test_live import Job


def wait(engine: Engine, url: str, job: Job, *, fallback_s: float, end: bool) -> JobRow | None:
    """Start waiting for ``job``, then record its success (and announce it if ``end``)."""

    async def main() -> JobRow | None:
        subscriber = StreamSubscriber.from_url(url)
        try:
            waiting = asyncio.create_task(
                job_end(
                    make_sessionmaker(engine),
                    job.id,
                    timeout_s=120,
                    events=subscriber.subscribe(job.id),
                    fallback_s=fallback_s,
                )
            )
            await asyncio.sleep(0.3)  # it has read the row once and blocks on the stream
            assert not waiting.done()
            await asyncio.to_thread(job.succeed, "Hello")
            if end:
                await asyncio.to_thread(
                    job.publish, JobEnded(AttemptId(job.claim.token, 1), "succeeded")
                )
            # Far below the fallback read: only the event can end the wait in time.
            with anyio.fail_after(30):
                return await waiting
        finally:
            await subscriber.close()

    return asyncio.run(main())


def test_the_end_event_wakes_the_waiter_at_once(
    engine: Engine, settings: Settings, redis_client: redis.Redis
) -> None:
    assert settings.redis_url is not None
    job = Job(engine, redis_client)
    ended = wait(engine, settings.redis_url, job, fallback_s=600, end=True)
    assert ended is not None
    assert ended.status == "succeeded"
    assert ended.result is not None
    assert ended.result["text"] == "Hello"


def test_an_end_nobody_announced_is_read_from_the_row(
    engine: Engine, settings: Settings, redis_client: redis.Redis
) -> None:
    assert settings.redis_url is not None
    job = Job(engine, redis_client)  # e.g. cancelled through the API: no worker tells of it
    ended = wait(engine, settings.redis_url, job, fallback_s=0.2, end=False)
    assert ended is not None
    assert ended.status == "succeeded"
