"""Thin tasks: take ids, call into ``app``, return nothing (Postgres holds the results)."""

from __future__ import annotations

import logging
import time

import psycopg
from celery.exceptions import Reject
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from app.constants import RECONCILE_TASK, RUN_JOB_TASK
from app.jobs.execution import run_job as execute
from app.ledger.rollup import ROLLUP_TASK, roll_up
from app.metrics.worker import worker_metrics
from workers.celery_app import celery_app
from workers.resources import resources

log = logging.getLogger(__name__)

# Postgres or Redis unreachable: the job is still queued (or its lease will expire), so the
# message goes back for a later try instead of being lost; the pause keeps a pool from
# spinning on it while the service restarts.
UNAVAILABLE = (psycopg.OperationalError, OperationalError, RedisError)
PAUSE_BEFORE_REQUEUE_S = 1.0


@celery_app.task(name=RUN_JOB_TASK, ignore_result=True)
def run_job(job_id: str) -> None:
    try:
        execute(resources().runtime, job_id)
    except UNAVAILABLE as exc:
        log.warning("job %s: %s unavailable; message requeued", job_id, type(exc).__name__)
        time.sleep(PAUSE_BEFORE_REQUEUE_S)
        raise Reject(reason=type(exc).__name__, requeue=True) from exc


@celery_app.task(name=RECONCILE_TASK, ignore_result=True)
def reconcile() -> None:
    worker_metrics().reconciled(resources().reconciler.run())


@celery_app.task(name=ROLLUP_TASK, ignore_result=True)
def rollup_reports() -> None:
    with resources().engine.begin() as conn:
        roll_up(conn)


import workers.signals  # noqa: E402,F401  - connects the worker lifecycle hooks
