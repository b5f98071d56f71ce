"""A worker process's own metrics server, over real HTTP: GET /metrics only, and the token."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from app.config import Settings
from app.errors import Unavailable
from app.metrics.exposition import MetricsServer, metrics_token
from app.metrics.worker import WorkerMetrics
from tests.metrics.scrape import parse

TOKEN = "worker-scrape-2b9c"


@pytest.fixture
def metrics() -> WorkerMetrics:
    metrics = WorkerMetrics()
    metrics.webhook_tried("delivered", 1, 0.05)
    metrics.webhook_tried("pending", 2, 0.5)
    return metrics


@pytest.fixture
def served(metrics: WorkerMetrics) -> Iterator[str]:
    server = MetricsServer(metrics.registry, TOKEN)
    port = server.start("127.0.0.1", 0)
    yield f"http://127.0.0.1:{port}"
    server.close()


def test_the_token_guards_the_metrics(served: str) -> None:
    missing = httpx.get(f"{served}/metrics")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_metrics_token"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.get(f"{served}/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.json()["error"]["code"] == "invalid_metrics_token"
    basic = httpx.get(f"{served}/metrics", auth=("prometheus", TOKEN))
    assert basic.status_code == 401

    right = httpx.get(f"{served}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200
    scraped = parse(right.text)
    assert scraped.value("switchboard_webhook_deliveries_total", outcome="delivered") == 1
    assert scraped.value("switchboard_webhook_deliveries_total", outcome="retry") == 1
    assert scraped.value("switchboard_webhook_retries_total") == 1
    assert all(name.startswith("switchboard_") for name in scraped.names())
    assert "_created" not in right.text


def test_only_get_metrics_is_served(served: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{served}/", headers=auth).status_code == 404
    assert httpx.get(f"{served}/metrics/x", headers=auth).status_code == 404
    posted = httpx.post(f"{served}/metrics", headers=auth)
    assert posted.status_code == 405
    assert posted.headers["allow"] == "GET"


def test_openmetrics_when_asked(served: str) -> None:
    accept = "application/openmetrics-text; version=1.0.0"
    answer = httpx.get(
        f"{served}/metrics", headers={"Authorization": f"Bearer {TOKEN}", "Accept": accept}
    )
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.text.rstrip().endswith("# EOF")


def test_a_taken_port_is_a_clear_error(served: str) -> None:
    port = int(served.rsplit(":", 1)[1])
    with pytest.raises(Unavailable, match="cannot serve metrics"):
        MetricsServer(WorkerMetrics().registry, None).start("127.0.0.1", port)


def test_an_empty_token_is_no_token() -> None:
    assert metrics_token(Settings(metrics_token=SecretStr(""))) is None
    assert metrics_token(Settings(metrics_token=SecretStr("t"))) == "t"
    assert metrics_token(Settings()) is None
