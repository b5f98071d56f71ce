"""Submit → queue → worker process → simulator → ledger, on real parts end to end."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import redis
from sqlalchemy import Engine, text

from app.cli.stack import Stack
from app.jobs.service import JobRef
from app.simulator.config import ErrorRates, SimModel, default_config
from app.simulator.control import with_models
from tests.conftest import Simulator, wait_for_jobs, wait_until
from workers.celery_app import create_celery_app
from workers.dispatch import CeleryDispatcher

pytestmark = pytest.mark.e2e

PRICES = {  # USD per million tokens, as the catalog ships them
    "sim-gpt-mini": (Decimal("0.15"), Decimal("0.60")),
    "sim-claude-haiku": (Decimal("0.80"), Decimal("4.00")),
    "sim-gpt-large": (Decimal("2.50"), Decimal("10.00")),
}


def chat(i: int, model: str | list[str], **extra: Any) -> dict[str, Any]:
    return {
        "custom_id": f"c-{i}",
        "model": model,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"Tell me about item {i}."},
        ],
        "max_tokens": 48,
        **extra,
    }


def wait_for_batch(api: httpx.Client, batch_id: str, timeout: float = 60) -> dict[str, Any]:
    batch: dict[str, Any] = {}

    def done() -> bool:
        nonlocal batch
        batch = api.get(f"/v1/batches/{batch_id}").json()
        return batch["status"] == "completed"

    wait_until(done, timeout=timeout, every=0.1)
    return batch


def reconfigure(simulator: Simulator, provider: str, **changes: Any) -> None:
    """Apply ``changes`` to every model of ``provider`` (e.g. errors, context_window)."""

    def change(model: SimModel) -> SimModel:
        return model.model_copy(update=changes)

    simulator.configure(with_models(default_config(), provider, change))


@pytest.fixture
def dispatcher(workers: Stack, redis_client: redis.Redis) -> Iterator[CeleryDispatcher]:
    assert workers.urls is not None
    app = create_celery_app(workers.urls.redis_url)
    yield CeleryDispatcher(app, redis_client)
    app.close()


@pytest.mark.usefixtures("workers")
def test_a_batch_runs_to_completion_and_the_ledger_is_exact(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    requests = [chat(i, "sim-gpt-mini" if i % 2 else "sim-claude-haiku") for i in range(40)]
    batch = api.post("/v1/batches", json={"requests": requests}).json()
    final = wait_for_batch(api, batch["id"])

    assert final["request_counts"] == {"total": 40, "completed": 40, "failed": 0}
    assert final["completed_at"] is not None
    with engine.connect() as conn:
        jobs = (
            conn.execute(
                text("SELECT * FROM jobs WHERE batch_id = :b ORDER BY custom_id"),
                {"b": batch["id"]},
            )
            .mappings()
            .all()
        )
        attempts = (
            conn.execute(
                text(
                    "SELECT a.* FROM attempts a JOIN jobs j ON j.id = a.job_id "
                    "WHERE j.batch_id = :b"
                ),
                {"b": batch["id"]},
            )
            .mappings()
            .all()
        )

    # Every job ran once, on the model it asked for, and its cost is exactly tokens × price.
    assert len(attempts) == 40
    assert {a["status"] for a in attempts} == {"succeeded"}
    for job in jobs:
        assert job["status"] == "succeeded"
        assert job["served_model"] == job["models"][0]
        assert job["created_at"] <= job["queued_at"] <= job["started_at"] <= job["finished_at"]
        price_in, price_out = PRICES[job["served_model"]]
        expected = (job["input_tokens"] * price_in + job["output_tokens"] * price_out) / 1_000_000
        assert job["cost_usd"] == expected
        assert job["attempt_count"] == 1
        assert job["result"]["text"]

    # The ledger agrees with what the provider says it served.
    stats = simulator.stats()["providers"]
    served_in = sum(stats[p]["prompt_tokens"] for p in ("sim-openai", "sim-anthropic"))
    served_out = sum(stats[p]["completion_tokens"] for p in ("sim-openai", "sim-anthropic"))
    assert sum(j["input_tokens"] for j in jobs) == served_in == final["usage"]["input_tokens"]
    assert sum(j["output_tokens"] for j in jobs) == served_out == final["usage"]["output_tokens"]
    assert Decimal(final["cost_usd"]) == sum(j["cost_usd"] for j in jobs)

    # Results join on custom_id, paged or as JSONL, in OpenAI's output-line shape.
    seen: dict[str, Any] = {}
    after = None
    while True:
        params: dict[str, Any] = {"limit": 15}
        if after:
            params["after"] = after
        page = api.get(f"/v1/batches/{batch['id']}/results", params=params).json()
        seen.update({line["custom_id"]: line for line in page["data"]})
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert set(seen) == {f"c-{i}" for i in range(40)}
    line = seen["c-3"]
    assert line["error"] is None
    assert line["response"]["status_code"] == 200
    assert line["response"]["body"]["model"] == "sim-gpt-mini"
    assert line["response"]["body"]["choices"][0]["message"]["content"]

    raw = api.get(f"/v1/batches/{batch['id']}/results", params={"format": "jsonl"})
    assert raw.headers["content-type"].startswith("application/jsonl")
    lines = [orjson.loads(x) for x in raw.content.splitlines()]
    assert {x["custom_id"] for x in lines} == set(seen)

    job = api.get(f"/v1/jobs/{jobs[0]['id']}").json()
    assert job["usage"]["input_tokens"] == jobs[0]["input_tokens"]
    assert job["attempts"][0]["decision"] == "succeeded"
    assert Decimal(job["cost_usd"]) == jobs[0]["cost_usd"]


@pytest.mark.usefixtures("workers")
def test_server_errors_retry_then_fall_back_to_the_next_model(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    reconfigure(simulator, "sim-anthropic", errors=ErrorRates(server_error=1.0))
    job_id = api.post("/v1/jobs", json=chat(0, ["sim-claude-haiku", "sim-gpt-mini"])).json()["id"]
    assert wait_for_jobs(engine, [job_id])[job_id] == "succeeded"

    job = api.get(f"/v1/jobs/{job_id}").json()
    assert (job["served_model"], job["provider"]) == ("sim-gpt-mini", "sim-openai")
    decisions = [(a["model"], a["error_class"], a["decision"]) for a in job["attempts"]]
    assert decisions == [
        ("sim-claude-haiku", "server_error", "retry"),
        ("sim-claude-haiku", "server_error", "retry"),
        ("sim-claude-haiku", "server_error", "fallback"),
        ("sim-gpt-mini", None, "succeeded"),
    ]
    assert all(a["decision_reason"] for a in job["attempts"][:3])
    assert job["attempt_count"] == 4


@pytest.mark.usefixtures("workers")
def test_a_context_length_error_skips_to_a_model_with_a_larger_window(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    reconfigure(simulator, "sim-openai", context_window=64)
    body = chat(1, ["sim-gpt-mini", "sim-claude-haiku"])
    body["messages"][1]["content"] = "word " * 400
    job_id = api.post("/v1/jobs", json=body).json()["id"]
    assert wait_for_jobs(engine, [job_id])[job_id] == "succeeded"
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert [(a["error_class"], a["decision"]) for a in job["attempts"]] == [
        ("context_length", "fallback"),
        (None, "succeeded"),
    ]
    assert job["served_model"] == "sim-claude-haiku"


@pytest.mark.usefixtures("workers")
def test_when_every_model_fails_the_job_fails_with_the_last_reason(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    reconfigure(simulator, "sim-openai", errors=ErrorRates(content_filter=1.0))
    job_id = api.post("/v1/jobs", json=chat(2, "sim-gpt-mini")).json()["id"]
    assert wait_for_jobs(engine, [job_id])[job_id] == "failed"
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["error"]["code"] == "content_filter"
    assert "no model left" in job["error"]["message"]
    assert job["result"] is None
    # A filtered answer was still generated and is paid for: the ledger says so, exactly.
    (attempt,) = job["attempts"]
    price_in, price_out = PRICES["sim-gpt-mini"]
    billed = (attempt["input_tokens"] * price_in + attempt["output_tokens"] * price_out) / 10**6
    assert attempt["input_tokens"] > 0
    assert Decimal(attempt["cost_usd"]) == billed
    assert Decimal(job["cost_usd"]) == billed
    assert job["usage"]["output_tokens"] == attempt["output_tokens"]


@pytest.mark.usefixtures("workers")
def test_a_redelivered_message_never_runs_or_records_a_job_twice(
    api: httpx.Client, engine: Engine, simulator: Simulator, dispatcher: CeleryDispatcher
) -> None:
    # Several messages for one queued job: exactly one worker gets to run it.
    job_id = api.post("/v1/jobs", json=chat(3, "sim-gpt-mini")).json()["id"]
    dispatcher.publish([JobRef(job_id, "sim-openai", "normal")] * 5)
    assert wait_for_jobs(engine, [job_id])[job_id] == "succeeded"

    # And messages for a job that already finished are dropped.
    dispatcher.publish([JobRef(job_id, "sim-openai", "high")] * 3)
    probe = api.post("/v1/jobs", json=chat(4, "sim-gpt-mini", priority="low")).json()["id"]
    wait_for_jobs(engine, [probe])  # the redeliveries were consumed before this low-priority job

    with engine.connect() as conn:
        attempts = conn.execute(
            text("SELECT count(*) FROM attempts WHERE job_id = :j"), {"j": job_id}
        ).scalar_one()
        row = conn.execute(
            text("SELECT attempt_count, claim_token FROM jobs WHERE id = :j"), {"j": job_id}
        ).one()
    assert attempts == 1
    assert row.attempt_count == 1
    assert row.claim_token == 1
    assert simulator.stats()["providers"]["sim-openai"]["requests"] == 2  # the job + the probe
