"""The outbox: events are rows first (written with the outcome that caused them), messages
second. A message only says "deliver event X now"; losing one loses nothing, because the sweep
republishes every event that is due and not in hand.

An event is *in hand* while a delivery holds its lease, or for ``grace_s`` after it was
published (its message is presumably still queued). After a failed try the event gets a
``next_attempt_at`` and no publish time: the sweep publishes it when that time comes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from celery import Celery
from sqlalchemy import Engine

from app.db.raw import autocommit

log = logging.getLogger(__name__)

WEBHOOKS_QUEUE = "switchboard.webhooks"
DELIVER_TASK = "switchboard.deliver_webhook"
SWEEP_TASK = "switchboard.sweep_webhooks"
CHUNK = 1000
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


class EventPublisher:
    """Puts ``deliver_webhook`` messages on the webhooks queue (anonymous exchange, queue
    name as routing key, like app/jobs dispatching: no binding in Redis to lose)."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def publish(self, event_ids: Sequence[str]) -> None:
        if not event_ids:
            return
        with self._app.producer_or_acquire() as producer:
            for event_id in event_ids:
                task_id = str(uuid.uuid4())
                message = self._app.amqp.as_task_v2(task_id, DELIVER_TASK, args=(event_id,))
                producer.publish(
                    orjson.dumps([[event_id], {}, _EMBED]),
                    exchange="",
                    routing_key=WEBHOOKS_QUEUE,
                    headers=dict(message.headers),
                    content_type="application/json",
                    content_encoding="utf-8",
                    correlation_id=task_id,
                    delivery_mode=2,
                    retry=False,
                )


_DUE = """
UPDATE webhook_events SET published_at = now()
WHERE id IN (
    SELECT id FROM webhook_events
    WHERE status = 'pending' AND next_attempt_at <= now()
        AND (published_at IS NULL OR published_at < now() - make_interval(secs => %(grace_s)s))
        AND (lease_until IS NULL OR lease_until < now())
    ORDER BY next_attempt_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING id"""


def sweep(engine: Engine, publisher: EventPublisher, *, grace_s: float) -> int:
    """Publish every event that is due and not in hand; how many were published."""
    published = 0
    with autocommit(engine) as conn:
        while True:
            rows: list[Any] = conn.execute(_DUE, {"grace_s": grace_s, "limit": CHUNK}).fetchall()
            ids = [r[0] for r in rows]
            publisher.publish(ids)
            published += len(ids)
            if len(ids) < CHUNK:
                return published
