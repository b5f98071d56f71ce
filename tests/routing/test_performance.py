"""Live performance computed from the ledger's attempts, and served by the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app.routing.performance import PRIOR_SUCCESS_RATE, Prior, compute_performance

_ATTEMPT = text(
    """
    INSERT INTO attempts (job_id, number, model_id, provider, status, started_at, finished_at,
                          latency_ms, error_class, decision)
    VALUES (:job, :number, :model, 'sim-openai', :status, :at, :at, :latency, :error, 'done')
    """
)


@pytest.fixture
def ledger(engine: Engine) -> Iterator[tuple[str, str]]:
    """Jobs (one per attempt: a job succeeds at most once) and a model id of their own, with
    attempts: 100 successes (1..100 ms), 5 timeouts,
    5 server errors, 4 skipped, and 3 successes older than the window."""
    job, model = f"job_perf_{uuid.uuid4().hex[:12]}", f"perf-model-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)

    def row(status: str, latency: int, error: str | None, at: datetime) -> dict[str, Any]:
        return {"status": status, "latency": latency, "error": error, "at": at}

    rows = [row("succeeded", ms, None, now) for ms in range(1, 101)]
    rows += [row("failed", 900, "timeout", now)] * 5
    rows += [row("failed", 50, "server_error", now)] * 5
    rows += [row("skipped", 0, "breaker_open", now)] * 4
    rows += [row("succeeded", 99999, None, now - timedelta(hours=1))] * 3
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (id, status, priority, request, models, provider) "
                "VALUES (:id, 'succeeded', 'normal', '{}', ARRAY[:model], 'sim-openai')"
            ),
            [{"id": f"{job}_{i}", "model": model} for i in range(len(rows))],
        )
        conn.execute(
            _ATTEMPT,
            [{**r, "job": f"{job}_{i}", "number": 1, "model": model} for i, r in enumerate(rows)],
        )
    yield job, model
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM jobs WHERE id LIKE :prefix"), {"prefix": f"{job}_%"})


def test_percentiles_success_and_errors_cover_only_the_window(
    db: Session, ledger: tuple[str, str]
) -> None:
    _, model = ledger
    perf = compute_performance(db, window_s=900, min_samples=10).of(model)
    assert (perf.samples, perf.succeeded) == (110, 100)  # skipped and old attempts left out
    assert perf.p50_ms == pytest.approx(50.5)
    assert perf.p95_ms == pytest.approx(95.05)
    assert perf.p99_ms == pytest.approx(99.01)
    assert perf.success_rate == pytest.approx(100 / 110)
    assert dict(perf.errors) == {"timeout": 5, "server_error": 5}
    assert perf.error_rates["timeout"] == pytest.approx(5 / 110)
    assert perf.latency_source == "live"
    assert perf.expected_latency_ms == pytest.approx(50.5)


def test_too_few_samples_fall_back_to_the_catalog_hint(
    db: Session, ledger: tuple[str, str]
) -> None:
    _, model = ledger
    priors = {model: Prior(latency_ms_hint=777, quality=70)}
    perf = compute_performance(db, window_s=900, min_samples=500, priors=priors).of(model)
    assert perf.latency_source == "prior"
    assert perf.expected_latency_ms == 777
    # The observed rate is pulled towards the prior by 500 pseudo-attempts.
    expected = (100 + PRIOR_SUCCESS_RATE * 500) / (110 + 500)
    assert perf.expected_success_rate == pytest.approx(expected)
    nothing = compute_performance(db, window_s=900, min_samples=10, priors=priors)
    assert nothing.of("never-called").expected_latency_ms is None


def test_the_api_serves_a_models_performance_and_everyones(api: httpx.Client) -> None:
    one = api.get("/v1/models/sim-gpt-mini/performance")
    assert one.status_code == 200
    body = one.json()
    assert body["model"] == "sim-gpt-mini"
    assert body["quality"] == 60
    assert body["latency_source"] in ("live", "prior")
    listing = api.get("/v1/performance").json()
    assert listing["window_s"] == 900
    assert {"sim-gpt-mini", "gpt-4o", "groq/qwen/qwen3-32b"} <= {
        m["model"] for m in listing["data"]
    }
    slashed = api.get("/v1/models/groq/qwen/qwen3-32b/performance")
    assert slashed.status_code == 200
    assert slashed.json()["quality"] == 75
    missing = api.get("/v1/models/no-such-model/performance")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"
