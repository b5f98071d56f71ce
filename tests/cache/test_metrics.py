"""The cache's metrics: counted where each outcome happens, API or worker, once committed."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import Engine

from app.cli.stack import Stack
from tests.cache.conftest import batch_jobs, line, wait_for_batch
from tests.metrics.conftest import Register, register_model, worker_metrics
from tests.metrics.scrape import scrape

pytestmark = [pytest.mark.e2e]
__all__ = ["register_model"]  # the fixture, from the metrics tests


def test_hits_misses_and_savings_are_counted_by_mode_and_model(
    workers: Stack,
    api_url: str,
    new_tenant: Callable[[], httpx.Client],
    engine: Engine,
    register_model: Register,
) -> None:
    model = register_model("cache")  # a model of this test's own: its series are too
    tenant = new_tenant()
    lines = [{**line(f"m-{i}", f"Metric prompt {i % 2}."), "model": model} for i in range(6)]
    first = wait_for_batch(
        tenant, tenant.post("/v1/batches", json={"requests": lines}).json()["id"]
    )
    again = tenant.post("/v1/batches", json={"requests": lines}).json()  # all six at submission
    assert again["status"] == "completed"

    labels = {"mode": "exact", "provider": "sim-openai", "model": model}
    worker = worker_metrics(workers, "sim-openai")
    api = scrape(f"{api_url}/metrics")
    lookups = "switchboard_cache_lookups_total"
    # The two first occurrences ran (counted as submitted); their repeats waited and were
    # served by the worker that finished them; the second batch was served at submission.
    assert api.value(lookups, outcome="miss", **labels) == 2
    assert worker.value(lookups, outcome="hit", **labels) == 4
    assert api.value(lookups, outcome="hit", **labels) == 6

    saved = {
        b: sum((j.cost_saved_usd for j in batch_jobs(engine, b) if j.cost_saved_usd), Decimal(0))
        for b in (first["id"], again["id"])
    }
    name = "switchboard_cache_saved_usd_total"
    assert worker.value(name, **labels) == pytest.approx(float(saved[first["id"]]))
    assert api.value(name, **labels) == pytest.approx(float(saved[again["id"]]))
    finished = "switchboard_jobs_finished_total"
    assert api.value(finished, status="succeeded", model=model) == 6  # hits are jobs that ended
