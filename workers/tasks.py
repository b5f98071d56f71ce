"""Thin tasks: take ids, call into ``app``, return nothing (Postgres holds the results)."""

from __future__ import annotations

from app.constants import RUN_JOB_TASK
from app.jobs.execution import run_job as execute
from workers.celery_app import celery_app
from workers.resources import resources


@celery_app.task(name=RUN_JOB_TASK, ignore_result=True)
def run_job(job_id: str) -> None:
    execute(resources().runtime, job_id)


import workers.signals  # noqa: E402,F401  - connects the worker lifecycle hooks
