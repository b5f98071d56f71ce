"""The runner in this process, on the test stack's real Postgres, Redis and simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from app.config import Settings
from app.db.engine import make_sessionmaker, unit_of_work
from app.jobs.execution import run_job
from app.jobs.schemas import JobCreate
from app.jobs.service import submit_job
from app.registry.service import load_registry
from tests.conftest import wait_for_jobs
from workers.resources import ProcessResources, build_resources

pytestmark = pytest.mark.usefixtures("workers")


@pytest.fixture
def local(settings: Settings) -> Iterator[ProcessResources]:
    resources = build_resources(settings)
    yield resources
    resources.close()


def unpublished_job(engine: Engine, models: list[str]) -> str:
    """A queued job no worker has a message for: only this test will run it."""
    with unit_of_work(make_sessionmaker(engine)) as session:
        spec = JobCreate.model_validate({"model": models, "prompt": "hi", "max_tokens": 8})
        job = submit_job(session, spec, load_registry(session), default_deadline_s=60)
        return job.job.id


def test_a_model_disabled_after_queueing_is_passed_over_for_the_next(
    local: ProcessResources, engine: Engine
) -> None:
    job_id = unpublished_job(engine, ["sim-gpt-large", "sim-claude-haiku"])
    with engine.begin() as conn:
        conn.execute(text("UPDATE models SET enabled = false WHERE id = 'sim-gpt-large'"))
    local.runtime.registry.invalidate()
    try:
        run_job(local.runtime, job_id)  # moves it on to sim-anthropic's queue
        assert wait_for_jobs(engine, [job_id])[job_id] == "succeeded"
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE models SET enabled = true WHERE id = 'sim-gpt-large'"))
    with engine.connect() as conn:
        served = conn.execute(
            text("SELECT served_model FROM jobs WHERE id = :id"), {"id": job_id}
        ).scalar_one()
        tried = (
            conn.execute(text("SELECT model_id FROM attempts WHERE job_id = :id"), {"id": job_id})
            .scalars()
            .all()
        )
    assert served == "sim-claude-haiku"
    assert tried == ["sim-claude-haiku"]


def test_a_job_whose_only_model_is_gone_fails_as_not_found(
    local: ProcessResources, engine: Engine
) -> None:
    job_id = unpublished_job(engine, ["sim-gpt-large"])
    with engine.begin() as conn:
        conn.execute(text("UPDATE models SET enabled = false WHERE id = 'sim-gpt-large'"))
    local.runtime.registry.invalidate()
    try:
        run_job(local.runtime, job_id)
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE models SET enabled = true WHERE id = 'sim-gpt-large'"))
    with engine.connect() as conn:
        status, error_class = conn.execute(
            text("SELECT status, error_class FROM jobs WHERE id = :id"), {"id": job_id}
        ).one()
    assert (status, error_class) == ("failed", "not_found")
