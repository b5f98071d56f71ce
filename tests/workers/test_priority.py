"""A provider's pool takes its high-priority queue first, and each queue in order."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import Engine, text

from app.cli.stack import Stack
from tests.conftest import wait_for_jobs

pytestmark = pytest.mark.e2e


def test_a_pool_serves_high_priority_first_then_each_queue_in_order(
    stack: Stack, api: httpx.Client, engine: Engine
) -> None:
    # sim-gemini has no pool yet: everything below waits in its queues.
    body = {"model": "sim-gemini-flash", "prompt": "hi", "max_tokens": 8}
    low = [api.post("/v1/jobs", json={**body, "priority": "low"}).json()["id"] for _ in range(6)]
    normal = api.post("/v1/jobs", json={**body, "priority": "normal"}).json()["id"]
    high = api.post("/v1/jobs", json={**body, "priority": "high"}).json()["id"]

    assert "sim-gemini" not in stack.workers
    stack.start_workers("sim-gemini", concurrency=1)  # one slot: the order is observable
    try:
        stack.wait_for_workers()
        wait_for_jobs(engine, [*low, normal, high])
    finally:  # later tests rely on nothing serving sim-gemini
        for child in stack.workers.pop("sim-gemini", []):
            child.stop()

    with engine.connect() as conn:
        order = (
            conn.execute(
                text("SELECT id FROM jobs WHERE id = ANY(:ids) ORDER BY started_at"),
                {"ids": [*low, normal, high]},
            )
            .scalars()
            .all()
        )
    assert order == [high, normal, *low]
