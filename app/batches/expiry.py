"""The batch side of the reconciler's pass: windows that passed, and stragglers of batches
that are stopping.

A batch still in progress when its window passes stops its requests that have not started
(``batch_expired``); a batch that is cancelling or finalizing has its requests that went back
to a queue after the stop (a retry or fallback of a request that was running) stopped too.
Each batch is one statement (app/batches/stop.py); one that fails (a lock conflict) is
simply due again on the next pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg

from app.batches.stop import CANCELLED, EXPIRED, stop_batch
from app.jobs.observer import JobEnd

log = logging.getLogger(__name__)

_DUE = """
SELECT id, status FROM batches b
WHERE status IN ('in_progress', 'cancelling', 'finalizing')
    AND ((status = 'in_progress' AND expires_at < now())
        OR (status <> 'in_progress' AND EXISTS (SELECT 1 FROM jobs
            WHERE jobs.batch_id = b.id AND jobs.status IN ('queued', 'waiting'))))
ORDER BY expires_at LIMIT %(limit)s"""


def stop_due_batches(
    conn: psycopg.Connection[Any],
    *,
    limit: int = 100,
    ended: Callable[[JobEnd, int], None] | None = None,
) -> int:
    """Stop what is due (see the module); how many requests were stopped. ``ended`` (an
    observer's) hears how many jobs of each kind that cancelled."""
    stopped = 0
    for batch_id, status in conn.execute(_DUE, {"limit": limit}).fetchall():
        reason = CANCELLED if status == "cancelling" else EXPIRED
        try:
            done = stop_batch(conn, batch_id, reason)
        except psycopg.errors.TransactionRollback as exc:  # a deadlock or serialization loss
            log.warning("batch %s: not stopped this pass (%s)", batch_id, type(exc).__name__)
            continue
        if status == "in_progress":
            log.info("batch %s expired: %d request(s) not run", batch_id, done.stopped)
        stopped += done.stopped
        if ended is not None:
            done.report(ended)
    return stopped
