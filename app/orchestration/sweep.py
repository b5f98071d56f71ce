"""The reconciler's part: orchestrations whose steps all ended without moving them on.

A step recorded by a worker advances its orchestration in the same transaction; one that
ended elsewhere — its deadline passed in the queue, a caller cancelled it, or advancing
failed — leaves a running orchestration with no live step. Each pass finds those and
advances them (``progress.advance`` is idempotent), then publishes what that created.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from app.jobs.service import Dispatcher, JobRef
from app.orchestration.progress import advance

log = logging.getLogger(__name__)

CHUNK = 500

_STALLED = """SELECT o.id FROM orchestrations o
    WHERE o.status = 'running' AND NOT EXISTS (
        SELECT 1 FROM jobs j WHERE j.parent_id = o.id
            AND j.status IN ('queued', 'waiting', 'running'))
    ORDER BY o.created_at LIMIT %(limit)s"""


def sweep(conn: psycopg.Connection[Any], dispatcher: Dispatcher) -> int:
    """Advance every stalled orchestration (``conn`` in autocommit); how many moved."""
    ids = [r[0] for r in conn.execute(_STALLED, {"limit": CHUNK}).fetchall()]
    refs: list[JobRef] = []
    moved = 0
    for orchestration_id in ids:
        try:
            with conn.transaction():
                progress = advance(conn, orchestration_id)
        except psycopg.OperationalError:
            raise
        except Exception:
            log.exception("orchestration %s could not be advanced", orchestration_id)
            continue
        refs.extend(progress.publish)
        moved += bool(progress.publish or progress.finished)
    if refs:
        dispatcher.publish(refs)
    return moved
