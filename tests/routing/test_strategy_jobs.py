"""Jobs that name a strategy instead of a model, on the real API, workers and simulator."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from app.simulator.config import SimModel, default_config
from app.simulator.control import with_models
from tests.conftest import Simulator, count_rows, wait_for_jobs

SIM_PAIR = ["sim-gpt-large", "sim-claude-sonnet"]  # one per provider the test workers serve
PROVIDER = {"sim-gpt-large": "sim-openai", "sim-claude-sonnet": "sim-anthropic"}


def body(strategy: str = "cost", **extra: Any) -> dict[str, Any]:
    return {
        "strategy": strategy,
        "route": {"prefer_models": SIM_PAIR},
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 16,
        **extra,
    }


@pytest.mark.e2e
@pytest.mark.usefixtures("workers")
def test_a_strategy_job_runs_on_the_chosen_model_and_says_why(
    api: httpx.Client, engine: Engine
) -> None:
    job_id = api.post("/v1/jobs", json=body("cost")).json()["id"]
    wait_for_jobs(engine, [job_id])
    job = api.get(f"/v1/jobs/{job_id}").json()
    routing = job["routing"]
    # Among the preferred pair, sim-claude-sonnet costs more than sim-gpt-large.
    assert routing["strategy"] == "cost"
    assert routing["model"] == "sim-gpt-large" == job["served_model"]
    assert job["model"] == routing["chain"]
    assert routing["chain"][:2] == SIM_PAIR
    assert routing["reason"].startswith("cheapest chat model")
    assert float(routing["estimated_cost_usd"]) > 0
    assert job["status"] == "succeeded"


def test_a_job_gives_exactly_one_of_model_or_strategy(api: httpx.Client) -> None:
    both = api.post("/v1/jobs", json=body(model="sim-gpt-mini"))
    neither = api.post("/v1/jobs", json={"messages": [{"role": "user", "content": "Hi"}]})
    for response in (both, neither):
        assert response.status_code == 400
        assert (
            "give exactly one of `model`, `strategy` or `policy`"
            in response.json()["error"]["message"]
        )
    stray = api.post(
        "/v1/jobs",
        json={"model": "sim-gpt-mini", "prompt": "Hi", "route": {"prefer_models": SIM_PAIR}},
    )
    assert stray.status_code == 400
    assert "`route` only applies" in stray.json()["error"]["message"]
    unknown = api.post("/v1/jobs", json=body("fastest"))
    assert unknown.status_code == 400


def test_a_strategy_no_model_can_satisfy_is_refused_naming_the_filter(
    api: httpx.Client, engine: Engine
) -> None:
    before = count_rows(engine, "jobs")
    impossible = body(route={"capabilities": ["embeddings", "vision"]})
    response = api.post("/v1/jobs", json=impossible)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "no_model_available"
    assert "capabilities" in error["message"]
    assert count_rows(engine, "jobs") == before


def test_the_dry_run_shows_the_choice_without_making_a_job(
    api: httpx.Client, engine: Engine
) -> None:
    before = count_rows(engine, "jobs")
    plain = api.post("/v1/route", json=body("quality", route={})).json()
    vision = api.post(
        "/v1/route",
        json=body("quality", route={"capabilities": ["vision"], "max_cost_usd": 0.00005}),
    ).json()
    assert plain["model"] == "gemini-2.5-pro"
    assert vision["model"] != plain["model"]
    assert float(vision["estimated_cost_usd"]) <= 0.00005
    assert vision["reason"].startswith("highest-quality chat/vision model")
    assert len(vision["chain"]) >= 2
    assert vision["candidates"][0]["model"] == vision["model"]
    assert count_rows(engine, "jobs") == before
    needs_strategy = api.post("/v1/route", json={"model": "sim-gpt-mini", "prompt": "Hi"})
    assert needs_strategy.status_code == 400


def test_a_batch_routes_each_strategy_request(api: httpx.Client) -> None:
    requests = [body("cost", custom_id="cheap"), {**body("quality"), "custom_id": "best"}]
    requests[1]["route"] = {"prefer_models": list(reversed(SIM_PAIR))}
    batch = api.post("/v1/batches", json={"requests": requests}).json()
    jobs = {
        job["custom_id"]: job for job in (api.get(f"/v1/jobs/{i}").json() for i in batch["job_ids"])
    }
    assert jobs["cheap"]["routing"]["model"] == "sim-gpt-large"
    assert jobs["best"]["routing"]["model"] == "sim-claude-sonnet"
    assert jobs["best"]["model"][0] == "sim-claude-sonnet"


def _served(api: httpx.Client, engine: Engine, count: int) -> list[str]:
    ids = [api.post("/v1/jobs", json=body("performance")).json()["id"] for _ in range(count)]
    statuses = wait_for_jobs(engine, ids, timeout=30)
    assert set(statuses.values()) == {"succeeded"}
    return [api.get(f"/v1/jobs/{i}").json()["routing"]["model"] for i in ids]


@pytest.mark.e2e
@pytest.mark.usefixtures("workers")
def test_a_slow_model_loses_traffic_after_its_latency_rises(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    fast = api.post("/v1/route", json=body("performance")).json()["model"]
    other = next(m for m in SIM_PAIR if m != fast)
    assert set(_served(api, engine, 3)) == {fast}
    # Earlier tests may have left slow calls of the other model in the window: outnumber
    # them with calls at its usual speed, so only this test's slowdown decides.
    recorded = api.get(f"/v1/models/{other}/performance").json()["succeeded"]
    direct = {"model": other, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16}
    ids = [api.post("/v1/jobs", json=direct).json()["id"] for _ in range(recorded + 4)]
    assert set(wait_for_jobs(engine, ids, timeout=60).values()) == {"succeeded"}
    started = time.monotonic()

    def slow(spec: SimModel) -> SimModel:
        return spec.model_copy(update={"latency_ms": 1200.0, "jitter_ms": 0.0})

    simulator.configure(with_models(default_config(), PROVIDER[fast], slow))
    # Outnumber the fast calls already in the window so its median moves.
    record = api.get(f"/v1/models/{fast}/performance").json()
    _served(api, engine, max(12, record["succeeded"] + 4))

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if api.post("/v1/route", json=body("performance")).json()["model"] == other:
            break
        time.sleep(0.5)
    record = api.get(f"/v1/models/{fast}/performance").json()
    assert record["latency_source"] == "live"
    assert record["latency_p50_ms"] >= 1000
    assert set(_served(api, engine, 4)) == {other}
    assert time.monotonic() - started < 30
