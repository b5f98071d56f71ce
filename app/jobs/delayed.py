"""Jobs set aside until a not-before time, without holding a worker slot meanwhile.

The job row says ``waiting`` with ``not_before`` (the truth); a Redis sorted set indexes the
waiting ids by that time so that promoting the due ones is cheap. Popping is atomic, so several
promoters never publish the same job twice; if Redis loses the set, the reconciler finds the
waiting rows in Postgres.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
import redis

from app.constants import DELAYED_JOBS_KEY
from app.jobs.service import JobRef

# Take up to ARGV[2] members due by ARGV[1] and remove them, in one atomic step.
_POP_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""

_PROMOTE = """UPDATE jobs SET status = 'queued', queued_at = now(), not_before = NULL
    WHERE id = ANY(%s) AND status = 'waiting'
    RETURNING id, provider, priority"""


class DelayedJobs:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._pop_due = client.register_script(_POP_DUE)

    def add(self, job_id: str, not_before: float) -> None:
        self._redis.zadd(DELAYED_JOBS_KEY, {job_id: not_before})

    def pop_due(self, now: float, limit: int = 500) -> list[str]:
        due = self._pop_due(keys=[DELAYED_JOBS_KEY], args=[now, limit])
        return [d.decode() if isinstance(d, bytes) else str(d) for d in due]


def promote(conn: psycopg.Connection[Any], job_ids: Sequence[str]) -> list[JobRef]:
    """Move due waiting jobs back to queued; returns what must be published after commit."""
    if not job_ids:
        return []
    rows = conn.execute(_PROMOTE, (list(job_ids),)).fetchall()
    return [JobRef(job_id, provider, priority) for job_id, provider, priority in rows]
