"""Publishing job messages: Celery's task protocol, straight onto the provider's queue.

Messages go through the anonymous exchange with the queue's name as routing key, so the
broker puts them on the queue directly. Routing through a named exchange would depend on the
binding keys kombu keeps in Redis, and a message published while those are missing (after a
Redis flush or restart) would be dropped silently; this way it cannot be.

The message itself is Celery's protocol 2, built by Celery (``as_task_v2``) once per publish
call; only the task id and the job id change from one job to the next, so a 10,000-job batch
is published in a few pipelined round trips rather than 10,000.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
import redis
from celery import Celery

from app.constants import LIVE_MESSAGES_KEY, RUN_JOB_TASK, queue_name
from app.jobs.service import JobRef

PIPELINE = 1000
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


class CeleryDispatcher:
    """Publishes one ``run_job`` message per job on its provider's priority queue.

    After the messages are out, the job ids go into a sorted set with the publish time: the
    reconciler treats a job that is queued in Postgres but absent from that set as one whose
    message was lost (a Redis flush or restart takes both), and publishes it again.
    """

    def __init__(self, app: Celery, client: redis.Redis) -> None:
        self._app = app
        self._redis = client

    def publish(self, refs: Sequence[JobRef]) -> None:
        if not refs:
            return
        template = self._template()
        with self._app.producer_or_acquire() as producer, producer.batch(PIPELINE):
            for ref in refs:
                task_id = str(uuid.uuid4())
                headers = dict(template, id=task_id, root_id=task_id, argsrepr=repr((ref.id,)))
                producer.publish(
                    orjson.dumps([[ref.id], {}, _EMBED]),
                    exchange="",
                    routing_key=queue_name(ref.provider, ref.priority),
                    headers=headers,
                    content_type="application/json",
                    content_encoding="utf-8",
                    correlation_id=task_id,
                    delivery_mode=2,
                    retry=False,
                )
        now = time.time()
        self._redis.zadd(LIVE_MESSAGES_KEY, {ref.id: now for ref in refs})

    def _template(self) -> dict[str, Any]:
        """Celery's own headers for a ``run_job`` message (protocol 2)."""
        message = self._app.amqp.as_task_v2(str(uuid.uuid4()), RUN_JOB_TASK, args=("?",))
        headers: dict[str, Any] = dict(message.headers)
        return headers
