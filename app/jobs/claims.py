"""Claiming a job for one attempt run: a conditional UPDATE, so redelivery is harmless."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from app.jobs.states import JobStatus, sources_for


@dataclass(frozen=True, slots=True)
class Claim:
    """A job this worker now owns, with what it needs to run it."""

    id: str
    token: int
    request: dict[str, Any]
    models: list[str]
    chain_index: int
    priority: str
    provider: str
    batch_id: str | None
    deadline_at: datetime | None
    attempt_count: int
    created_at: datetime
    notify: bool = False  # its outcome may send webhook events
    kind: str = "chat"  # or "embedding"
    queue_wait_s: float | None = None  # claimed this long after it was (last) queued
    parent_id: str | None = None  # the chain or ensemble it is a step of (app/orchestration)

    @property
    def model_id(self) -> str:
        return self.models[self.chain_index]


_SOURCES = ", ".join(f"'{s}'" for s in sources_for(JobStatus.RUNNING))
_CLAIM = f"""UPDATE jobs SET status = 'running', claim_token = claim_token + 1,
        started_at = coalesce(started_at, now()),
        lease_until = now() + make_interval(secs => %(lease_s)s)
    WHERE id = %(job_id)s AND status IN ({_SOURCES})
    RETURNING id, claim_token, request, models, chain_index, priority, provider, batch_id,
        deadline_at, attempt_count, created_at, notify, kind, parent_id,
        extract(epoch FROM now() - queued_at)::float8 AS queue_wait_s"""


def claim_job(conn: psycopg.Connection[Any], job_id: str, *, lease_s: float) -> Claim | None:
    """Take ``job_id`` if it is queued; None if it is running elsewhere, finished or gone."""
    with conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(_CLAIM, {"job_id": job_id, "lease_s": lease_s}).fetchone()
    if row is None:
        return None
    return Claim(
        id=row["id"],
        token=row["claim_token"],
        request=row["request"],
        models=list(row["models"]),
        chain_index=row["chain_index"],
        priority=row["priority"],
        provider=row["provider"],
        batch_id=row["batch_id"],
        deadline_at=row["deadline_at"],
        attempt_count=row["attempt_count"],
        created_at=row["created_at"],
        notify=row["notify"],
        kind=row["kind"],
        queue_wait_s=row["queue_wait_s"],
        parent_id=row["parent_id"],
    )
