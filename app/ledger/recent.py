"""The last hour, minute by minute, and the latest failures: what a status page shows.

The rollups are hourly, so a minute series reads the raw table — one hour of it, through the
``finished_at`` index — and the latest failures read the partial index of failed jobs, so a
ledger of millions of successes costs them nothing extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.ledger.timeframe import TENANT

MINUTES = 60
MAX_MESSAGE_CHARS = 300

# Every minute of the last hour by the database's clock (the current one included), zeros too.
_PER_MINUTE = text(
    f"""WITH m AS (
        SELECT generate_series(date_trunc('minute', now()) - make_interval(mins => :span - 1),
            date_trunc('minute', now()), interval '1 minute') AS minute
    ), j AS (
        SELECT date_trunc('minute', finished_at) AS minute,
            count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
            count(*) FILTER (WHERE status = 'failed') AS failed,
            count(*) FILTER (WHERE status = 'cancelled') AS cancelled
        FROM jobs
        WHERE finished_at >= date_trunc('minute', now()) - make_interval(mins => :span - 1)
            AND status IN ('succeeded', 'failed', 'cancelled') AND {TENANT}
        GROUP BY 1
    )
    SELECT m.minute, coalesce(j.succeeded, 0) AS succeeded, coalesce(j.failed, 0) AS failed,
        coalesce(j.cancelled, 0) AS cancelled
    FROM m LEFT JOIN j USING (minute) ORDER BY m.minute"""  # noqa: S608 - constants only
)

# ix_jobs_failed_finished_at holds failed jobs only.
_FAILURES = text(
    f"""SELECT id, coalesce(served_model, models[chain_index + 1]) AS model,
        coalesce(served_provider, provider) AS provider, error_class,
        left(error_message, :chars) AS message, finished_at
    FROM jobs WHERE status = 'failed' AND {TENANT}
    ORDER BY finished_at DESC LIMIT :limit"""  # noqa: S608 - constants only
)


@dataclass(frozen=True, slots=True)
class Minute:
    minute: datetime
    succeeded: int
    failed: int
    cancelled: int

    @property
    def jobs(self) -> int:
        return self.succeeded + self.failed + self.cancelled


@dataclass(frozen=True, slots=True)
class Failure:
    job_id: str
    model: str
    provider: str
    error_class: str | None
    message: str | None
    finished_at: datetime


def per_minute(session: Session, *, tenant_id: str | None, minutes: int = MINUTES) -> list[Minute]:
    """Jobs finished in each of the last ``minutes`` minutes, oldest first."""
    rows = session.execute(_PER_MINUTE, {"span": minutes, "tenant": tenant_id})
    return [Minute(r.minute, r.succeeded, r.failed, r.cancelled) for r in rows]


def latest_failures(session: Session, *, tenant_id: str | None, limit: int = 20) -> list[Failure]:
    """The ``limit`` failed jobs that finished last, newest first."""
    params = {"tenant": tenant_id, "limit": limit, "chars": MAX_MESSAGE_CHARS}
    return [
        Failure(r.id, r.model, r.provider, r.error_class, r.message, r.finished_at)
        for r in session.execute(_FAILURES, params)
    ]
