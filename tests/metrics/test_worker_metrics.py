"""A worker's /metrics after real batches: the same jobs, attempts, tokens and cost as the
ledger, its waits for rate-limit tokens, and its fallbacks and breaker transitions."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from sqlalchemy import Engine, text

from app.cli.stack import Stack
from tests.conftest import wait_for_jobs, wait_until
from tests.metrics.conftest import Register, chat, worker_metrics
from tests.metrics.scrape import Scrape, scrape

pytestmark = [pytest.mark.e2e]

BATCH = 140
RPM = 120  # the model's bucket holds 120 calls (burst 60 s) and refills 2 a second
# Jobs past the bucket that must wait, even if the first 120 took 5 s (10 more tokens).
MUST_WAIT = BATCH - RPM - 10


def ledger_attempts(engine: Engine, model: str) -> list[tuple[str, str, int, int, float]]:
    """(status, error_class, input tokens, output tokens, cost) of every attempt on ``model``."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT status, coalesce(error_class, ''), coalesce(input_tokens, 0), "
                "coalesce(output_tokens, 0), coalesce(cost_usd, 0) FROM attempts "
                "WHERE model_id = :m"
            ),
            {"m": model},
        ).all()
    return [(r[0], r[1], int(r[2]), int(r[3]), float(r[4])) for r in rows]


def attempt_counts(metrics: Scrape, model: str) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for s in metrics.series("switchboard_attempts_total"):
        if s.labels["model"] == model:
            counts[s.labels["outcome"], s.labels["error_class"]] += int(s.value)
    return counts


def test_a_batch_counts_on_the_worker_as_in_the_ledger(
    workers: Stack, api: httpx.Client, engine: Engine, register_model: Register
) -> None:
    model = register_model(rpm=RPM)
    before = worker_metrics(workers, "sim-openai")
    requests = [chat(model, i) for i in range(BATCH)]
    created = api.post("/v1/batches", json={"requests": requests, "priority": "high"})
    assert created.status_code == 200, created.text
    batch = created.json()
    statuses = wait_for_jobs(engine, batch["job_ids"], timeout=120)
    assert set(statuses.values()) == {"succeeded"}
    after = worker_metrics(workers, "sim-openai")

    labels = {"provider": "sim-openai", "model": model}
    assert after.value("switchboard_jobs_finished_total", status="succeeded", **labels) == BATCH
    assert after.value("switchboard_jobs_finished_total", status="failed", **labels) == 0

    attempts = ledger_attempts(engine, model)
    assert attempt_counts(after, model) == Counter((a[0], a[1]) for a in attempts)
    calls = sum(1 for a in attempts if a[0] != "skipped")
    assert after.value("switchboard_provider_call_duration_seconds_count", **labels) == calls
    assert after.value("switchboard_tokens_total", kind="input", **labels) == sum(
        a[2] for a in attempts
    )
    assert after.value("switchboard_tokens_total", kind="output", **labels) == sum(
        a[3] for a in attempts
    )
    assert after.value("switchboard_cost_usd_total", **labels) == pytest.approx(
        sum(a[4] for a in attempts), rel=1e-9
    )

    report = api.get("/v1/costs", params={"group_by": "model", "period": "1h"}).json()
    (line,) = [line for line in report["data"] if line["key"] == model]
    assert after.value("switchboard_cost_usd_total", **labels) == pytest.approx(
        float(line["cost_usd"]), rel=1e-9
    )

    def grew(name: str, **match: str) -> float:
        return after.value(name, **match) - before.value(name, **match)

    # Every claim of the batch's jobs was on sim-openai's high queue (others may add more).
    assert grew("switchboard_queue_wait_seconds_count", provider="sim-openai", priority="high") >= (
        BATCH
    )
    assert grew(
        "switchboard_job_duration_seconds_count", provider="sim-openai", priority="high"
    ) >= (BATCH)
    # Once the bucket ran dry, each job waited at least once: in its slot or set aside.
    waits = grew("switchboard_ratelimit_waits_total", provider="sim-openai")
    assert waits >= MUST_WAIT
    assert grew("switchboard_ratelimit_waits_total", provider="sim-openai", kind="in_slot") >= 1
    assert grew("switchboard_ratelimit_wait_seconds_total", provider="sim-openai") > 0


def test_fallbacks_and_the_breaker_of_a_missing_model(
    workers: Stack,
    api: httpx.Client,
    api_url: str,
    engine: Engine,
    register_model: Register,
) -> None:
    gone = register_model("gone", upstream="no-such-model")
    target = f"model:{gone}"
    before = worker_metrics(workers, "sim-openai")
    requests = [chat([gone, "sim-claude-haiku"], i) for i in range(6)]
    created = api.post("/v1/batches", json={"requests": requests, "priority": "normal"})
    assert created.status_code == 200, created.text
    batch = created.json()
    try:
        statuses = wait_for_jobs(engine, batch["job_ids"])
        assert set(statuses.values()) == {"succeeded"}
        after = worker_metrics(workers, "sim-openai")
        with engine.connect() as conn:
            started_on_gone = conn.execute(
                text("SELECT count(DISTINCT job_id) FROM attempts WHERE model_id = :m"),
                {"m": gone},
            ).scalar_one()
        assert started_on_gone >= 1

        moved = {"from_provider": "sim-openai", "to_provider": "sim-anthropic"}
        fallbacks = after.value("switchboard_fallbacks_total", **moved) - before.value(
            "switchboard_fallbacks_total", **moved
        )
        assert fallbacks == started_on_gone
        assert after.value("switchboard_fallbacks_total", error_class="not_found", **moved) >= 1
        assert attempt_counts(after, gone) == Counter(
            (a[0], a[1]) for a in ledger_attempts(engine, gone)
        )
        opened = {"target": target, "from_state": "closed", "to_state": "open"}
        assert after.value("switchboard_breaker_transitions_total", **opened) == 1

        def api_sees(state: str) -> bool:
            metrics = scrape(f"{api_url}/metrics")
            return metrics.value("switchboard_breaker_state", target=target, state=state) == 1

        wait_until(lambda: api_sees("open"), timeout=10)
    finally:
        api.post(f"/v1/breakers/{target}/reset").raise_for_status()
    closed = {"target": target, "from_state": "open", "to_state": "closed"}
    assert (
        scrape(f"{api_url}/metrics").value("switchboard_breaker_transitions_total", **closed) == 1
    )
    wait_until(lambda: api_sees("closed"), timeout=10)
