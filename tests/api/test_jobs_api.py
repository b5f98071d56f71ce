"""``/v1/jobs`` on the real API process, database and broker."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import Engine, text

from tests.conftest import count_rows

# A model whose provider has no worker in the tests: its queue only ever fills.
IDLE_MODEL = "sim-llama-small"
IDLE_QUEUES = ("sim-ollama.high", "sim-ollama.normal", "sim-ollama.low")


def queued_messages(redis_client: redis.Redis) -> int:
    return sum(int(redis_client.llen(q)) for q in IDLE_QUEUES)


def chat(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": IDLE_MODEL,
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 16,
    }
    body.update(overrides)
    return body


def test_submitting_a_job_returns_its_id_at_once_and_queues_it(
    api: httpx.Client, engine: Engine, redis_client: redis.Redis
) -> None:
    before = queued_messages(redis_client)
    response = api.post("/v1/jobs", json=chat(priority="high", metadata={"team": "evals"}))
    assert response.status_code == 202
    body = response.json()
    assert body["id"].startswith("job_")
    assert (body["status"], body["created"]) == ("queued", True)
    assert redis_client.llen("sim-ollama.high") >= 1
    assert queued_messages(redis_client) == before + 1

    job = api.get(f"/v1/jobs/{body['id']}").json()
    assert job["status"] == "queued"
    assert job["model"] == [IDLE_MODEL]
    assert job["priority"] == "high"
    assert job["metadata"] == {"team": "evals"}
    assert job["attempts"] == []
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT provider, created_at, queued_at, deadline_at FROM jobs WHERE id = :id"),
            {"id": body["id"]},
        ).one()
    assert row.provider == "sim-ollama"
    assert row.queued_at is not None
    assert row.deadline_at > row.created_at


def test_a_prompt_becomes_one_user_message(api: httpx.Client, engine: Engine) -> None:
    job_id = api.post("/v1/jobs", json={"model": IDLE_MODEL, "prompt": "Hi there"}).json()["id"]
    with engine.connect() as conn:
        request = conn.execute(
            text("SELECT request FROM jobs WHERE id = :id"), {"id": job_id}
        ).scalar_one()
    assert request["messages"] == [{"role": "user", "content": "Hi there"}]


def test_an_alias_resolves_to_the_model_id(api: httpx.Client) -> None:
    models = api.get("/v1/models").json()["data"]
    aliased = next((m for m in models if m["aliases"]), None)
    if aliased is None:
        pytest.skip("the catalog declares no aliases")
    job_id = api.post("/v1/jobs", json=chat(model=aliased["aliases"][0])).json()["id"]
    assert api.get(f"/v1/jobs/{job_id}").json()["model"] == [aliased["id"]]


def test_the_same_idempotency_key_returns_the_same_job(
    api: httpx.Client, engine: Engine, redis_client: redis.Redis
) -> None:
    headers = {"Idempotency-Key": "retry-safe-123"}
    first = api.post("/v1/jobs", json=chat(), headers=headers)
    jobs_before, queued_before = count_rows(engine, "jobs"), queued_messages(redis_client)
    second = api.post("/v1/jobs", json=chat(), headers=headers)
    assert second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["created"] is False
    assert count_rows(engine, "jobs") == jobs_before
    assert queued_messages(redis_client) == queued_before


def test_an_idempotency_key_reused_for_another_request_is_a_conflict(api: httpx.Client) -> None:
    headers = {"Idempotency-Key": "reused-key-456"}
    assert api.post("/v1/jobs", json=chat(), headers=headers).status_code == 202
    response = api.post("/v1/jobs", json=chat(max_tokens=17), headers=headers)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"


BAD_JOBS: list[tuple[str, Any, int, str, str | None]] = [
    # (case, body, status, code, param the message must name)
    ("unknown model", chat(model="gpt-9-ultra"), 400, "unknown_model", "model"),
    (
        "unknown model in a chain",
        chat(model=[IDLE_MODEL, "nope"]),
        400,
        "unknown_model",
        "model[1]",
    ),
    ("empty messages", chat(messages=[]), 400, "invalid_request", "messages"),
    (
        "empty content",
        chat(messages=[{"role": "user", "content": ""}]),
        400,
        "invalid_request",
        "messages[0]",
    ),
    ("negative max_tokens", chat(max_tokens=-5), 400, "invalid_request", "max_tokens"),
    ("unknown priority", chat(priority="urgent"), 400, "invalid_request", "priority"),
    ("no input", {"model": IDLE_MODEL}, 400, "invalid_request", None),
    ("unknown field", chat(temprature=0.3), 400, "invalid_request", "temprature"),
    ("temperature too high", chat(temperature=3), 400, "invalid_request", "temperature"),
    (
        "NUL in content",
        chat(messages=[{"role": "user", "content": "a\x00b"}]),
        400,
        "invalid_request",
        None,
    ),
    ("embeddings model", chat(model="text-embedding-3-small"), 400, "unsupported_model", "model"),
    (
        "too much metadata",
        chat(metadata={f"k{i}": "v" for i in range(17)}),
        400,
        "invalid_request",
        "metadata",
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "code", "param"), BAD_JOBS, ids=[c[0] for c in BAD_JOBS]
)
def test_bad_input_is_a_clear_4xx_and_writes_nothing(
    api: httpx.Client,
    engine: Engine,
    redis_client: redis.Redis,
    case: str,
    body: Any,
    status: int,
    code: str,
    param: str | None,
) -> None:
    jobs_before, queued_before = count_rows(engine, "jobs"), queued_messages(redis_client)
    response = api.post("/v1/jobs", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    if param is not None:
        assert error["param"] == param
        assert param.split("[")[0] in error["message"]
    assert count_rows(engine, "jobs") == jobs_before
    assert queued_messages(redis_client) == queued_before


def test_malformed_json_is_a_400(api: httpx.Client, engine: Engine) -> None:
    before = count_rows(engine, "jobs")
    response = api.post(
        "/v1/jobs", content=b'{"model": "x", ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert count_rows(engine, "jobs") == before


def test_an_unknown_job_is_a_404(api: httpx.Client) -> None:
    response = api.get("/v1/jobs/job_doesnotexist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "job_not_found"


def test_unknown_routes_use_the_same_error_shape(api: httpx.Client) -> None:
    response = api.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_models_lists_prices_as_exact_decimals(api: httpx.Client) -> None:
    models = {m["id"]: m for m in api.get("/v1/models").json()["data"]}
    for seed in (
        "gpt-4-turbo",
        "gpt-3.5-turbo",
        "claude-3-opus",
        "claude-3-sonnet",
        "sim-gpt-mini",
    ):
        assert seed in models
    assert models["sim-gpt-mini"]["pricing"] == {
        "currency": "USD",
        "input_per_mtok": "0.15",
        "output_per_mtok": "0.6",
        "cached_input_per_mtok": "0.075",
    }
    assert models["sim-claude-haiku"]["simulated"] is True


def test_health_and_readiness(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}
