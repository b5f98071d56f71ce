"""What is waiting where: messages on the broker's queues and live jobs in Postgres.

Both sides, because they can disagree and the difference means something: a queue's messages
are what its workers will take next (the Redis lists kombu keeps, one per message priority
step); the ``queued``/``waiting``/``running`` rows are the truth the reconciler restores the
queues from (a flushed Redis shows queued jobs with no messages until it has). Read on
demand — by a Prometheus scrape or the dashboard — never on the per-job path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from kombu.transport.redis import PRIORITY_STEPS
from kombu.transport.redis import Channel as KombuChannel
from sqlalchemy import Connection, text

from app.constants import DELAYED_JOBS_KEY

LIVE_STATUSES = ("queued", "waiting", "running")

# Served by the partial index ix_jobs_live (only live rows are in it).
_LIVE = text(
    """SELECT provider, priority, status, count(*) AS jobs FROM jobs
    WHERE status IN ('queued', 'waiting', 'running') GROUP BY 1, 2, 3"""
)
# Served by the partial index ix_webhook_events_due.
_PENDING_EVENTS = text("SELECT count(*) FROM webhook_events WHERE status = 'pending'")


def _lists(queue: str) -> list[str]:
    """The Redis lists kombu keeps one queue's messages in (one per priority step)."""
    return [queue if step == 0 else f"{queue}{KombuChannel.sep}{step}" for step in PRIORITY_STEPS]


def queue_messages(client: redis.Redis, queues: Sequence[str]) -> dict[str, int]:
    """Messages waiting on each of ``queues`` (taken but unacknowledged ones not counted)."""
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            for name in _lists(queue):
                pipe.llen(name)
        lengths: list[Any] = pipe.execute()
    steps = len(PRIORITY_STEPS)
    return {
        q: sum(int(n) for n in lengths[i * steps : (i + 1) * steps]) for i, q in enumerate(queues)
    }


def delayed_jobs(client: redis.Redis) -> int:
    """Entries of the timer index of waiting jobs (``app.jobs.delayed``)."""
    count: Any = client.zcard(DELAYED_JOBS_KEY)
    return int(count)


def live_jobs(conn: Connection) -> dict[tuple[str, str, str], int]:
    """Jobs not yet finished, by (provider, priority, status)."""
    return {(r.provider, r.priority, r.status): int(r.jobs) for r in conn.execute(_LIVE)}


def pending_webhook_events(conn: Connection) -> int:
    """Webhook events still to deliver (due now or waiting for a retry)."""
    return int(conn.execute(_PENDING_EVENTS).scalar_one())
