"""Routing around failures on real workers: bad keys, missing models, dead providers, deadlines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from app.simulator.config import ErrorRates, default_config
from app.simulator.control import with_models, with_provider
from tests.conftest import Simulator, wait_for_jobs, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]

FALLBACK = ["sim-claude-haiku", "sim-gpt-mini"]


@pytest.fixture(autouse=True)
def breakers_closed(api: httpx.Client) -> Iterator[None]:
    """Each test starts and ends with every breaker closed."""
    yield
    for breaker in api.get("/v1/breakers").json()["data"]:
        api.post(f"/v1/breakers/{breaker['target']}/reset").raise_for_status()


def submit(api: httpx.Client, model: str | list[str], **extra: Any) -> str:
    body = {
        "model": model,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "Hello"}],
        **extra,
    }
    return str(api.post("/v1/jobs", json=body).json()["id"])


def attempts_of(api: httpx.Client, job_id: str) -> list[tuple[str, str, str | None, str]]:
    job = api.get(f"/v1/jobs/{job_id}").json()
    return [(a["model"], a["status"], a["error_class"], a["decision"]) for a in job["attempts"]]


def test_a_rejected_key_is_disabled_and_another_key_takes_over(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    good, bad = "sk-the-good-key-0123456789", "sk-a-revoked-key-0123456789"
    simulator.configure(with_provider(default_config(), "sim-openai", keys=[good]))
    ids = [
        api.post(
            "/v1/keys", json={"provider": "sim-openai", "label": label, "secret": secret}
        ).json()["id"]
        for label, secret in (("revoked", bad), ("current", good))
    ]
    try:
        jobs = [submit(api, "sim-gpt-mini") for _ in range(8)]
        assert set(wait_for_jobs(engine, jobs).values()) == {"succeeded"}
        keys = {k["label"]: k for k in api.get("/v1/keys").json()["data"] if k["id"] in ids}
        assert keys["revoked"]["enabled"] is False
        assert keys["revoked"]["disabled_reason"]
        assert keys["current"]["enabled"] is True
        rejected = [a for job in jobs for a in attempts_of(api, job) if a[2] == "auth"]
        assert rejected, "the revoked key was never tried"
        assert {a[3] for a in rejected} == {"retry"}
        assert bad not in str(api.get(f"/v1/jobs/{jobs[0]}").json())
    finally:
        for key_id in ids:
            api.delete(f"/v1/keys/{key_id}")


def test_a_model_the_provider_does_not_know_is_marked_unavailable(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    config = default_config()
    served = config.providers["sim-openai"].models
    models = {name: spec for name, spec in served.items() if name != "sim-gpt-large"}
    simulator.configure(with_provider(config, "sim-openai", models=models))
    chain = ["sim-gpt-large", "sim-claude-haiku"]

    first = submit(api, chain)
    assert wait_for_jobs(engine, [first])[first] == "succeeded"
    assert attempts_of(api, first) == [
        ("sim-gpt-large", "failed", "not_found", "fallback"),
        ("sim-claude-haiku", "succeeded", None, "succeeded"),
    ]
    breakers = {b["target"]: b for b in api.get("/v1/breakers").json()["data"]}
    assert breakers["model:sim-gpt-large"]["state"] == "open"
    assert breakers["model:sim-gpt-large"]["forced"] is True

    # Later jobs make no call to it: routed past it at submission, or (within the API's
    # 0.25 s breaker cache) skipped by the worker without a call.
    later = [submit(api, chain) for _ in range(3)]
    assert set(wait_for_jobs(engine, later).values()) == {"succeeded"}
    for job in later:
        tried = attempts_of(api, job)
        assert tried[-1] == ("sim-claude-haiku", "succeeded", None, "succeeded")
        assert all(status == "skipped" for model, status, _, _ in tried if model == "sim-gpt-large")


def test_a_dead_provider_opens_its_breaker_and_jobs_go_straight_to_the_fallback(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    simulator.configure(with_provider(default_config(), "sim-anthropic", down=True))
    jobs = [submit(api, FALLBACK) for _ in range(12)]
    assert set(wait_for_jobs(engine, jobs).values()) == {"succeeded"}

    def open_breaker() -> bool:
        states = {b["target"]: b["state"] for b in api.get("/v1/breakers").json()["data"]}
        targets = ("provider:sim-anthropic", "model:sim-claude-haiku")
        return "open" in (states.get(t) for t in targets)

    wait_until(open_breaker, timeout=10)
    calls_before = simulator.stats()["providers"]["sim-anthropic"]["requests"]
    later = [submit(api, FALLBACK) for _ in range(5)]
    assert set(wait_for_jobs(engine, later).values()) == {"succeeded"}
    for job in later:
        assert attempts_of(api, job) == [("sim-gpt-mini", "succeeded", None, "succeeded")]
    assert simulator.stats()["providers"]["sim-anthropic"]["requests"] == calls_before


def test_a_job_past_its_deadline_fails_with_reason_deadline(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    hang = ErrorRates(timeout=1.0, hang_s=30)
    simulator.configure(
        with_models(
            default_config(), "sim-anthropic", lambda m: m.model_copy(update={"errors": hang})
        )
    )
    running = submit(api, "sim-claude-haiku", deadline_s=1.5)
    never_run = submit(api, "sim-llama-small", deadline_s=1.0)  # no worker serves sim-ollama
    statuses = wait_for_jobs(engine, [running, never_run], timeout=30)
    assert statuses == {running: "failed", never_run: "failed"}
    for job_id in (running, never_run):
        assert api.get(f"/v1/jobs/{job_id}").json()["error"]["code"] == "deadline"
