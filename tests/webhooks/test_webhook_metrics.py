"""The delivery pool's /metrics: each try by outcome, the retries among them, their time."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import Engine

from app.cli.stack import Stack
from tests.conftest import wait_for_jobs, wait_until
from tests.metrics.scrape import Scrape, scrape
from tests.webhooks.conftest import Receiver

pytestmark = pytest.mark.usefixtures("simulator")


def pool_metrics(stack: Stack) -> Scrape:
    (pool,) = stack.workers["webhooks"]
    assert pool.metrics_url is not None
    return scrape(pool.metrics_url)


def test_a_retried_delivery_counts_a_retry_then_a_delivery(
    webhook_workers: Stack, api: httpx.Client, receiver: Receiver, engine: Engine
) -> None:
    created = api.post("/v1/webhooks/endpoints", json={"url": receiver.url})
    assert created.status_code == 201, created.text
    receiver.answer((503, {"retry-after": "0"}), (200, {}))
    before = pool_metrics(webhook_workers)
    body = {"model": "sim-gpt-mini", "prompt": "Hi", "max_tokens": 8, "webhook_url": receiver.url}
    job_id = api.post("/v1/jobs", json=body).json()["id"]
    assert wait_for_jobs(engine, [job_id]) == {job_id: "succeeded"}
    wait_until(lambda: receiver.count() == 2, timeout=30)

    def grew(name: str, **labels: str) -> float:
        return pool_metrics(webhook_workers).value(name, **labels) - before.value(name, **labels)

    wait_until(lambda: grew("switchboard_webhook_deliveries_total", outcome="delivered") == 1)
    assert grew("switchboard_webhook_deliveries_total", outcome="retry") == 1
    assert grew("switchboard_webhook_deliveries_total", outcome="failed") == 0
    assert grew("switchboard_webhook_retries_total") == 1
    assert grew("switchboard_webhook_delivery_duration_seconds_count") == 2
