"""Validators on real workers: a refused answer is a billed ``quality`` failure that follows
the decision table — resampled once on the same model, then the next model — through
``POST /v1/jobs``, ``/v1/chat/completions`` and batches alike."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from app.simulator.config import SimulatorConfig, default_config
from app.simulator.control import with_provider
from tests.conftest import Simulator, wait_for_jobs

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]

ANSWER = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "integer"}},
    "required": ["answer", "confidence"],
}
JSON_ANSWER = {"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER}}


def prose_from_mini() -> SimulatorConfig:
    """sim-gpt-mini ignores ``response_format`` (it answers in prose); sim-gpt-large keeps it."""
    config = default_config()
    models = dict(config.providers["sim-openai"].models)
    models["sim-gpt-mini"] = models["sim-gpt-mini"].model_copy(
        update={"follows_response_format": False}
    )
    return with_provider(config, "sim-openai", models=models)


def json_job(**extra: Any) -> dict[str, Any]:
    return {
        "model": ["sim-gpt-mini", "sim-gpt-large"],
        "prompt": "Is the sky blue? Answer in JSON.",
        "max_tokens": 128,
        "response_format": JSON_ANSWER,
        "validators": [{"type": "json_schema", "schema": ANSWER}],
        **extra,
    }


def attempts(api: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.get(f"/v1/jobs/{job_id}").json()["attempts"]
    return found


def test_an_answer_that_is_not_the_json_asked_for_falls_back_to_a_model_that_gives_it(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    simulator.configure(prose_from_mini())
    job_id = api.post("/v1/jobs", json=json_job()).json()["id"]
    assert wait_for_jobs(engine, [job_id])[job_id] == "succeeded"
    job = api.get(f"/v1/jobs/{job_id}").json()
    tried = [(a["model"], a["status"], a["error_class"], a["decision"]) for a in job["attempts"]]
    assert tried == [
        ("sim-gpt-mini", "failed", "quality", "retry"),
        ("sim-gpt-mini", "failed", "quality", "fallback"),
        ("sim-gpt-large", "succeeded", None, "succeeded"),
    ]
    assert "is not JSON" in job["attempts"][0]["error_message"]
    assert job["served_model"] == "sim-gpt-large"
    answer = orjson.loads(job["result"]["text"])
    assert set(answer) == {"answer", "confidence"}
    # Every attempt produced an answer, so every one is billed, and the job pays for all.
    assert all(a["input_tokens"] and a["output_tokens"] for a in job["attempts"])
    billed = sum(Decimal(a["cost_usd"]) for a in job["attempts"])
    assert Decimal(job["cost_usd"]) == billed
    assert job["usage"]["input_tokens"] == sum(a["input_tokens"] for a in job["attempts"])


def test_a_greedy_request_is_not_resampled_on_the_same_model(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    simulator.configure(prose_from_mini())
    job_id = api.post("/v1/jobs", json=json_job(temperature=0)).json()["id"]
    assert wait_for_jobs(engine, [job_id])[job_id] == "succeeded"
    assert [(a["model"], a["decision"]) for a in attempts(api, job_id)] == [
        ("sim-gpt-mini", "fallback"),
        ("sim-gpt-large", "succeeded"),
    ]


def test_when_no_model_passes_the_job_fails_on_quality(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    simulator.configure(prose_from_mini())
    body = json_job(model="sim-gpt-mini")
    job_id = api.post("/v1/jobs", json=body).json()["id"]
    assert wait_for_jobs(engine, [job_id])[job_id] == "failed"
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["error"]["code"] == "quality"
    assert "no model left" in job["error"]["message"]
    assert Decimal(job["cost_usd"]) > 0

    chat = api.post("/v1/chat/completions", json={**body, "validators": body["validators"]})
    assert chat.status_code == 502
    assert chat.json()["error"]["code"] == "quality"


def test_a_truncated_json_answer_is_refused_too(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    """A JSON answer cut by max_tokens no longer parses: exactly what validators are for."""
    job_id = api.post("/v1/jobs", json=json_job(model="sim-gpt-large", max_tokens=3)).json()["id"]
    assert wait_for_jobs(engine, [job_id])[job_id] == "failed"
    assert {a["error_class"] for a in attempts(api, job_id)} == {"quality"}


def test_a_streamed_chat_completion_is_sent_once_its_answer_passed(
    api: httpx.Client, simulator: Simulator
) -> None:
    """A live stream could not take back what failed validation: a request with validators
    is answered in chunks once its answer has passed them (here, the fallback model's)."""
    config = default_config()
    models = dict(config.providers["sim-anthropic"].models)
    models["sim-claude-haiku"] = models["sim-claude-haiku"].model_copy(
        update={"output_tokens": (2, 2)}
    )
    simulator.configure(with_provider(config, "sim-anthropic", models=models))
    body = {
        "model": ["sim-claude-haiku", "sim-gpt-mini"],
        "messages": [{"role": "user", "content": "Tell me a story"}],
        "max_tokens": 64,
        "stream": True,
        "validators": [{"type": "min_length", "length": 30}],
    }
    with api.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["x-switchboard-model"] == "sim-gpt-mini"
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    text = "".join(
        choice["delta"].get("content") or ""
        for event in events[:-1]
        for choice in orjson.loads(event.removeprefix("data: "))["choices"]
    )
    assert len(text) >= 30


def test_batch_lines_carry_their_validators(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    simulator.configure(prose_from_mini())
    lines = [{"custom_id": f"q{i}", **json_job()} for i in range(3)]
    batch = api.post("/v1/batches", json={"requests": lines}).json()
    statuses = wait_for_jobs(engine, batch["job_ids"])
    assert set(statuses.values()) == {"succeeded"}
    for job_id in batch["job_ids"]:
        assert [a["error_class"] for a in attempts(api, job_id)] == ["quality", "quality", None]


def test_validators_that_cannot_run_are_refused_at_submission(api: httpx.Client) -> None:
    bad = {"type": "regex", "pattern": r"(\w+) \1"}
    for path in ("/v1/jobs", "/v1/chat/completions"):
        response = api.post(path, json=json_job(validators=[bad]))
        assert response.status_code == 400, response.text
        assert "RE2" in response.json()["error"]["message"]
