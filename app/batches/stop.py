"""Stopping a batch's requests that have not started: on cancel, and when its window passes.

One statement per batch does it all, taking its locks in the order every job outcome takes
them (jobs, budget windows in budget order, then the batch): the batch's queued and waiting
jobs become ``cancelled`` with the reason OpenAI writes in the error file; their budget
reservations are released (summed per window: an UPDATE changes a row once); the batch's
``cancelled`` counter, status and timestamps move (app/batches/lifecycle.py); and if that ended
the batch, its webhook event is written. Jobs already running are left to finish; the
statement that records the last of them ends the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import psycopg
from psycopg.rows import dict_row

from app.batches.lifecycle import CANCEL, ENDED_NOW, EXPIRE, Intent, status_assignments
from app.jobs.observer import JobEnd
from app.jobs.states import JobStatus, sources_for
from app.ledger.record import BATCH_EVENT


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a batch's remaining requests stop: the error-file code, and what it does to the
    batch (``intent``: which running status becomes which)."""

    code: str
    message: str
    intent: Intent


CANCELLED = Reason(
    "batch_cancelled", "This request was not executed because the batch was cancelled.", CANCEL
)
EXPIRED = Reason(
    "batch_expired",
    "This request could not be executed before the completion window expired.",
    EXPIRE,
)

_NOT_STARTED = [
    s for s in sources_for(JobStatus.CANCELLED) if s in (JobStatus.QUEUED, JobStatus.WAITING)
]


@cache
def _statement(reason: Reason) -> str:
    sources = ", ".join(f"'{s}'" for s in _NOT_STARTED)
    return f"""WITH j AS (
    UPDATE jobs SET status = 'cancelled', finished_at = now(), lease_until = NULL,
        budget_holds = NULL, error_class = %(code)s, error_message = %(message)s
    FROM (SELECT id, budget_holds FROM jobs
          WHERE batch_id = %(batch_id)s AND status IN ({sources})) AS held
    WHERE jobs.id = held.id AND jobs.status IN ({sources})
    RETURNING jobs.id, held.budget_holds AS holds, jobs.cost_usd, jobs.provider,
        jobs.models[jobs.chain_index + 1] AS model, jobs.priority
), x AS (
    SELECT h.budget_id, h.window_start, sum(h.usd) AS usd,
        sum(coalesce(j.cost_usd, 0)) AS spent
    FROM j, jsonb_to_recordset(j.holds) AS h(budget_id text, window_start timestamptz,
        usd numeric)
    WHERE j.holds IS NOT NULL
    GROUP BY h.budget_id, h.window_start
), locked AS MATERIALIZED (
    SELECT w.budget_id, w.window_start FROM budget_windows w
    JOIN x ON w.budget_id = x.budget_id AND w.window_start = x.window_start
    ORDER BY w.budget_id, w.window_start FOR UPDATE OF w
), s AS (
    UPDATE budget_windows w SET reserved_usd = w.reserved_usd - x.usd,
        spent_usd = w.spent_usd + x.spent
    FROM x JOIN locked l ON l.budget_id = x.budget_id AND l.window_start = x.window_start
    WHERE w.budget_id = x.budget_id AND w.window_start = x.window_start
), n AS (SELECT count(*) AS stopped FROM j
), b AS (
    UPDATE batches SET cancelled = batches.cancelled + n.stopped,
        {status_assignments("n.stopped", reason.intent)}
    FROM n WHERE batches.id = %(batch_id)s
    RETURNING batches.status, batches.id, batches.tenant_id, batches.webhook_url,
        {ENDED_NOW} AS ended
){BATCH_EVENT}
SELECT (SELECT stopped FROM n) AS stopped, (SELECT status FROM b) AS status,
    ARRAY(SELECT id FROM eb) AS webhook_events,
    (SELECT coalesce(jsonb_agg(jsonb_build_array(provider, model, priority, jobs)), '[]')
     FROM (SELECT provider, model, priority, count(*) AS jobs FROM j
           GROUP BY provider, model, priority) AS g) AS ended"""


@dataclass(frozen=True, slots=True)
class Stopped:
    stopped: int  # requests that will not run
    status: str | None  # the batch's status after the statement (None: no such batch)
    webhook_events: tuple[str, ...]
    # The stopped jobs counted by (provider, model, priority), for the metrics.
    ended: tuple[tuple[str, str, str, int], ...] = ()

    def report(self, ended: Callable[[JobEnd, int], None]) -> None:
        """Tell ``ended`` (an observer's) how many jobs of each kind were cancelled."""
        now = datetime.now(UTC)
        for provider, model, priority, count in self.ended:
            ended(JobEnd("cancelled", provider, model, priority, now), count)


_PUBLISH_NOW = "UPDATE webhook_events SET published_at = NULL WHERE id = ANY(%(ids)s)"


def stop_batch(conn: psycopg.Connection[Any], batch_id: str, reason: Reason) -> Stopped:
    """Stop the batch's requests that have not started, for ``reason``; see the module."""
    params = {"batch_id": batch_id, "code": reason.code, "message": reason.message}
    with conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(_statement(reason), params).fetchone()
        assert row is not None
        events = tuple(row["webhook_events"] or ())
        if events:
            # No worker publishes these: let the outbox sweep send them on its next pass
            # rather than after the grace it gives events it believes are queued.
            cursor.execute(_PUBLISH_NOW, {"ids": list(events)})
    ended = tuple((p, m, prio, int(n)) for p, m, prio, n in row["ended"])
    return Stopped(row["stopped"], row["status"], events, ended)
