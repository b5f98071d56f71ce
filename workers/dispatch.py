"""Publishing job messages through Celery, pipelined when there are many."""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis
from celery import Celery

from app.constants import LIVE_MESSAGES_KEY, RUN_JOB_TASK, queue_name
from app.jobs.service import JobRef

BATCH_PIPELINE = 1000


class CeleryDispatcher:
    """Publishes one ``run_job`` message per job on its provider's priority queue.

    Each published job id is also stamped in a sorted set with the publish time, which the
    reconciler reads to tell a queued job whose message was lost from one still waiting its turn.
    """

    def __init__(self, app: Celery, client: redis.Redis) -> None:
        self._app = app
        self._redis = client

    def publish(self, refs: Sequence[JobRef]) -> None:
        if not refs:
            return
        now = time.time()
        self._redis.zadd(LIVE_MESSAGES_KEY, {ref.id: now for ref in refs})
        with self._app.producer_or_acquire() as producer, producer.batch(BATCH_PIPELINE):
            for ref in refs:
                self._app.send_task(
                    RUN_JOB_TASK,
                    args=[ref.id],
                    queue=queue_name(ref.provider, ref.priority),
                    producer=producer,
                )
