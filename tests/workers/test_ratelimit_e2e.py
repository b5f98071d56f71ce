"""Rate limits end to end: the gateway paces itself so the provider never has to say 429."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from app.simulator.config import default_config
from app.simulator.control import with_provider
from tests.conftest import TEST_WORKER_ENV, Simulator, wait_for_jobs

REGISTRY_REFRESH_S = 2 * float(TEST_WORKER_ENV["SWITCHBOARD_REGISTRY_REFRESH_S"])

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]


@contextmanager
def provider_limits(api: httpx.Client, name: str, **limits: Any) -> Iterator[None]:
    """Set a provider's limits in the registry for the block, then put the old ones back."""
    before = next(p for p in api.get("/v1/providers").json()["data"] if p["name"] == name)
    api.patch(f"/v1/providers/{name}", json=limits).raise_for_status()
    time.sleep(REGISTRY_REFRESH_S)  # workers see registry changes after their cache expires
    try:
        yield
    finally:
        keep = {k: before[k] for k in ("rpm", "tpm", "itpm", "otpm", "burst_s")}
        api.patch(f"/v1/providers/{name}", json=keep).raise_for_status()
        time.sleep(REGISTRY_REFRESH_S)


def jobs(api: httpx.Client, n: int, model: str, **extra: Any) -> list[str]:
    requests = [
        {
            "custom_id": f"r{i}",
            "model": model,
            "max_tokens": 32,
            "messages": [{"role": "user", "content": f"Count to {i}."}],
            **extra,
        }
        for i in range(n)
    ]
    batch = api.post("/v1/batches", json={"requests": requests, "priority": "normal"}).json()
    return list(batch["job_ids"])


def test_a_provider_with_the_same_limits_sees_no_request_over_them(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    limits = {"rpm": 600, "tpm": 60_000, "burst_s": 2.0}  # 20 requests / 2,000 tokens of burst
    simulator.configure(with_provider(default_config(), "sim-openai", **limits))
    with provider_limits(api, "sim-openai", **limits):
        ids = jobs(api, 60, "sim-gpt-mini")
        statuses = wait_for_jobs(engine, ids, timeout=60)
    stats = simulator.stats()["providers"]["sim-openai"]
    assert set(statuses.values()) == {"succeeded"}
    assert stats["rate_limited"] == 0
    assert stats["responses"].get("429", 0) == 0
    with engine.connect() as conn:
        first, last = conn.execute(
            text("SELECT min(started_at), max(finished_at) FROM jobs WHERE id = ANY(:ids)"),
            {"ids": ids},
        ).one()
    # 60 requests at 10/s after a burst of 20 cannot take less than ~4 s: the gateway waited.
    assert (last - first).total_seconds() > 3.0


def test_several_keys_share_the_load_within_each_keys_limit(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    limits = {"rpm": 300, "burst_s": 2.0}
    simulator.configure(with_provider(default_config(), "sim-openai", limit_scope="key", **limits))
    keys = [
        api.post(
            "/v1/keys",
            json={
                "provider": "sim-openai",
                "label": f"k{i}",
                "secret": f"sk-sim-key-number-{i}-abcdefgh",
            },
        ).json()["id"]
        for i in range(3)
    ]
    try:
        with provider_limits(api, "sim-openai", **limits):
            ids = jobs(api, 45, "sim-gpt-mini")
            statuses = wait_for_jobs(engine, ids, timeout=60)
    finally:
        for key in keys:
            api.delete(f"/v1/keys/{key}")
    assert set(statuses.values()) == {"succeeded"}
    with engine.connect() as conn:
        used = conn.execute(
            text("SELECT key_id, count(*) FROM attempts WHERE job_id = ANY(:ids) GROUP BY 1"),
            {"ids": ids},
        ).all()
    assert {key_id for key_id, _ in used} == set(keys)
    stats = simulator.stats()["providers"]["sim-openai"]
    assert stats["rate_limited"] == 0
    assert len(stats["by_key"]) == 3


def test_a_request_larger_than_the_limit_falls_back_instead_of_waiting_forever(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    with provider_limits(api, "sim-openai", tpm=1_000, burst_s=60.0):
        job = api.post(
            "/v1/jobs",
            json={
                "model": ["sim-gpt-mini", "sim-claude-haiku"],
                "max_tokens": 4_000,
                "messages": [{"role": "user", "content": "A long answer, please."}],
            },
        ).json()["id"]
        assert wait_for_jobs(engine, [job])[job] == "succeeded"
    attempts = api.get(f"/v1/jobs/{job}").json()["attempts"]
    assert [(a["model"], a["status"], a["error_class"]) for a in attempts] == [
        ("sim-gpt-mini", "skipped", "rate_limit"),
        ("sim-claude-haiku", "succeeded", None),
    ]
    assert "capacity" in attempts[0]["error_message"]
    assert "sim-openai" not in simulator.stats()["providers"]  # it never got the request
