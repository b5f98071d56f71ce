"""The API's /metrics: requests by route template, the state gauges read at scrape time, jobs
it cancels, and the metrics token."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.config import Settings
from app.main import create_app
from tests.conftest import wait_until
from tests.metrics.conftest import chat
from tests.metrics.scrape import Scrape, parse, scrape

IDLE = ("sim-gemini", "sim-gemini-flash")  # no test starts workers for it: its queue only fills


def test_requests_are_counted_by_route_template_not_path(api: httpx.Client, api_url: str) -> None:
    before = scrape(f"{api_url}/metrics")
    for job_id in ("job_nosuchjob0001", "job_nosuchjob0002"):
        assert api.get(f"/v1/jobs/{job_id}").status_code == 404
    assert api.get("/v1/providers/sim-openai/keys").status_code == 200
    assert api.get("/no/such/route").status_code == 404
    after = scrape(f"{api_url}/metrics")

    def grew(**labels: str) -> float:
        name = "switchboard_http_requests_total"
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew(method="GET", route="/v1/jobs/{job_id}", status="404") == 2
    # A route of a router inside another router keeps both prefixes.
    assert grew(method="GET", route="/v1/providers/{name}/keys", status="200") == 1
    assert grew(method="GET", route="unmatched", status="404") == 1
    assert (
        after.value("switchboard_http_request_duration_seconds_count", route="/v1/jobs/{job_id}")
        - before.value("switchboard_http_request_duration_seconds_count", route="/v1/jobs/{job_id}")
        == 2
    )
    assert "job_nosuchjob0001" not in after.text
    assert "/no/such/route" not in after.text


def _gauges(api_url: str) -> Scrape:
    return scrape(f"{api_url}/metrics")


def test_queue_depth_and_live_jobs_are_read_at_scrape_time_and_cancels_count(
    api: httpx.Client, api_url: str
) -> None:
    provider, model = IDLE
    queue = f"{provider}.normal"
    live = {"provider": provider, "priority": "normal", "status": "queued"}
    before = _gauges(api_url)
    assert before.value("switchboard_backing_service_up", service="postgres") == 1
    assert before.value("switchboard_backing_service_up", service="redis") == 1
    assert before.value("switchboard_breaker_state", target=f"provider:{provider}", state="closed")
    messages, queued = (
        before.value("switchboard_queue_messages", queue=queue),
        before.value("switchboard_live_jobs", **live),
    )

    jobs = [
        api.post("/v1/jobs", json=chat(model, i, priority="normal")).json()["id"] for i in range(3)
    ]
    try:

        def shows_them() -> bool:
            now = _gauges(api_url)
            return (
                now.value("switchboard_queue_messages", queue=queue, provider=provider)
                == messages + 3
                and now.value("switchboard_live_jobs", **live) == queued + 3
            )

        wait_until(shows_them, timeout=10, every=0.5)
    finally:
        for job_id in jobs:
            assert api.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    # Cancelling again changes nothing, and counts nothing.
    assert api.post(f"/v1/jobs/{jobs[0]}/cancel").status_code == 200
    cancelled = {"status": "cancelled", "provider": provider, "model": model, "priority": "normal"}
    after = _gauges(api_url)
    assert (
        after.value("switchboard_jobs_finished_total", **cancelled)
        - before.value("switchboard_jobs_finished_total", **cancelled)
        == 3
    )
    wait_until(
        lambda: _gauges(api_url).value("switchboard_live_jobs", **live) == queued, timeout=10
    )


def test_a_cancelled_batch_counts_each_request_it_stopped(api: httpx.Client, api_url: str) -> None:
    provider, model = IDLE
    cancelled = {"status": "cancelled", "provider": provider, "model": model, "priority": "low"}
    before = _gauges(api_url).value("switchboard_jobs_finished_total", **cancelled)
    batch = api.post("/v1/batches", json={"requests": [chat(model, i) for i in range(4)]})
    assert batch.status_code == 200, batch.text
    stopped = api.post(f"/v1/batches/{batch.json()['id']}/cancel")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "cancelled"
    after = _gauges(api_url).value("switchboard_jobs_finished_total", **cancelled)
    assert after - before == 4


@pytest.fixture
def guarded(settings: Settings) -> Iterator[TestClient]:
    """An API of its own (in this process, on the test stack's services) with a token."""
    app = create_app(settings.model_copy(update={"metrics_token": SecretStr("scrape-me-7f3a")}))
    with TestClient(app) as client:
        yield client


def test_the_metrics_token_is_required_when_set(guarded: TestClient) -> None:
    missing = guarded.get("/metrics")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_metrics_token"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = guarded.get("/metrics", headers={"Authorization": "Bearer scrape-me-0000"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_metrics_token"
    assert "scrape-me" not in wrong.text

    right = guarded.get("/metrics", headers={"Authorization": "Bearer scrape-me-7f3a"})
    assert right.status_code == 200
    assert right.headers["content-type"].startswith("text/plain")
    names = parse(right.text).names()
    assert "switchboard_queue_messages" in names
    assert all(name.startswith("switchboard_") for name in names)


def test_metrics_are_no_part_of_the_api_document() -> None:
    assert "/metrics" not in create_app().openapi()["paths"]


def test_no_token_means_open_metrics(anonymous: httpx.Client) -> None:
    assert anonymous.get("/metrics").status_code == 200


@pytest.fixture
def without_redis(settings: Settings) -> Iterator[TestClient]:
    """An API of its own whose Redis does not answer (nothing listens on port 1)."""
    changed = {"redis_url": "redis://127.0.0.1:1/0", "admin_key": SecretStr("sb-admin-outage")}
    with TestClient(create_app(settings.model_copy(update=changed))) as client:
        yield client


def test_a_redis_outage_leaves_the_rest_of_the_metrics_and_the_dashboard(
    without_redis: TestClient,
) -> None:
    scraped = without_redis.get("/metrics")
    assert scraped.status_code == 200
    metrics = parse(scraped.text)
    assert metrics.value("switchboard_backing_service_up", service="redis") == 0
    assert metrics.value("switchboard_backing_service_up", service="postgres") == 1
    assert "switchboard_queue_messages" not in metrics.names()
    assert "switchboard_breaker_state" not in metrics.names()
    assert metrics.series("switchboard_live_jobs")  # Postgres still answers

    board = without_redis.get("/v1/dashboard", headers={"Authorization": "Bearer sb-admin-outage"})
    assert board.status_code == 200, board.text
    data = board.json()
    assert data["services"] == {"postgres": True, "redis": False}
    assert data["queues"]
    assert all(q["messages"] is None for q in data["queues"])
    assert all(isinstance(q["queued"], int) for q in data["queues"])
