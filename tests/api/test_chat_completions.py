"""``POST /v1/chat/completions``: OpenAI's endpoint answered by a real job, worker and simulator."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletion
from sqlalchemy import Engine, text

from app.providers.finish_reasons import openai_finish_reason
from app.simulator.config import SimModel, default_config
from app.simulator.control import with_models
from tests.conftest import Simulator, wait_until

pytestmark = pytest.mark.usefixtures("workers")

IDLE_MODEL = "sim-llama-small"  # no worker serves its provider in the tests


def chat(model: Any = "sim-gpt-mini", **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"Say hello ({uuid.uuid4().hex[:8]})."},
        ],
        "max_tokens": 32,
        **extra,
    }


def small_context(simulator: Simulator, provider: str) -> None:
    def change(model: SimModel) -> SimModel:
        return model.model_copy(update={"context_window": 64})

    simulator.configure(with_models(default_config(), provider, change))


def too_long() -> list[dict[str, str]]:
    return [{"role": "user", "content": "word " * 400}]


@pytest.fixture
def sdk(api_url: str, admin_key: str) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=api_url + "/v1", api_key=admin_key, max_retries=0)
    yield client
    client.close()


@pytest.fixture
def tenant(api: httpx.Client) -> tuple[str, str]:
    """A new tenant's id and its own gateway key."""
    tenant_id = f"t-{uuid.uuid4().hex[:10]}"
    assert api.post("/v1/tenants", json={"id": tenant_id, "name": tenant_id}).status_code == 201
    issued = api.post(f"/v1/tenants/{tenant_id}/keys", json={"label": "chat"})
    assert issued.status_code == 201, issued.text
    return tenant_id, str(issued.json()["key"])


def test_the_answer_has_openai_shape_and_the_job_cost_in_headers(
    api: httpx.Client, engine: Engine
) -> None:
    response = api.post("/v1/chat/completions", json=chat())
    assert response.status_code == 200, response.text
    body = response.json()
    job_id = response.headers["x-switchboard-job-id"]
    assert body["id"] == f"chatcmpl-{job_id}"
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "sim-gpt-mini"
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0

    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    assert job["priority"] == "high"
    assert choice["message"]["content"] == job["result"]["text"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (
        job["usage"]["input_tokens"],
        job["usage"]["output_tokens"],
    )
    assert response.headers["x-switchboard-model"] == job["served_model"] == "sim-gpt-mini"
    assert response.headers["x-switchboard-provider"] == job["provider"] == "sim-openai"
    assert Decimal(response.headers["x-switchboard-cost-usd"]) == Decimal(job["cost_usd"]) > 0
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT cost_usd FROM jobs WHERE id = :id"), {"id": job_id})
        assert stored.scalar_one() == Decimal(job["cost_usd"])


def test_the_openai_sdk_gets_the_simulators_answer_unchanged(
    sdk: openai.OpenAI, api: httpx.Client
) -> None:
    answer = sdk.chat.completions.create(
        model="sim-claude-haiku",
        messages=[{"role": "user", "content": "What is a gateway?"}],
        max_tokens=24,
    )
    job_id = answer.id.removeprefix("chatcmpl-")
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert answer.model == "sim-claude-haiku"
    assert answer.choices[0].message.content == job["result"]["text"]
    # Anthropic's own reason is kept on the job; the answer speaks OpenAI's, as its SDK's
    # strict types require.
    raw = job["result"]["finish_reason"]
    assert answer.choices[0].finish_reason == {"end_turn": "stop", "max_tokens": "length"}[raw]
    ChatCompletion.model_validate(answer.model_dump(), strict=True)
    assert answer.usage is not None
    assert answer.usage.completion_tokens == job["usage"]["output_tokens"]


def test_a_tenant_key_makes_a_job_of_that_tenant(
    api_url: str, tenant: tuple[str, str], api: httpx.Client
) -> None:
    tenant_key = tenant[1]
    with openai.OpenAI(base_url=api_url + "/v1", api_key=tenant_key, max_retries=0) as client:
        answer = client.chat.completions.create(**chat())
    job_id = answer.id.removeprefix("chatcmpl-")
    with httpx.Client(
        base_url=api_url, headers={"Authorization": f"Bearer {tenant_key}"}
    ) as tenant:
        assert tenant.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"
    # The admin acting for the default tenant does not see another tenant's job.
    scoped = api.get(f"/v1/jobs/{job_id}", headers={"X-Switchboard-Tenant": "default"})
    assert scoped.status_code == 404


def test_streaming_sends_the_whole_answer_then_usage_then_done(
    sdk: openai.OpenAI, api: httpx.Client
) -> None:
    stream = sdk.chat.completions.create(
        **chat(), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    usage = chunks[-1].usage
    job = api.get(f"/v1/jobs/{chunks[0].id.removeprefix('chatcmpl-')}").json()
    assert text == job["result"]["text"]
    assert finish == [openai_finish_reason(job["result"]["finish_reason"])]
    assert usage is not None
    assert usage.total_tokens == job["usage"]["total_tokens"]
    assert {c.model for c in chunks} == {"sim-gpt-mini"}


def test_a_raw_stream_ends_with_done(api: httpx.Client) -> None:
    with api.stream("POST", "/v1/chat/completions", json=chat(stream=True)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert all(orjson.loads(e[6:])["object"] == "chat.completion.chunk" for e in events[:-1])


def test_a_tenant_over_its_budget_gets_openais_quota_error(
    api_url: str, tenant: tuple[str, str], api: httpx.Client
) -> None:
    tenant_id, key = tenant
    limit = {"tenant_id": tenant_id, "period": "day", "limit_usd": "0.0000001"}
    assert api.post("/v1/budgets", json=limit).status_code == 201
    client = openai.OpenAI(base_url=api_url + "/v1", api_key=key, max_retries=0)
    with client, pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(**chat())
    assert raised.value.status_code == 402
    assert raised.value.code == "budget_exceeded"
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["type"] == "insufficient_quota"


def test_a_fallback_list_answers_with_the_model_that_served(
    api: httpx.Client, simulator: Simulator
) -> None:
    small_context(simulator, "sim-openai")
    body = chat(["sim-gpt-mini", "sim-claude-haiku"])
    body["messages"] = too_long()
    response = api.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "sim-claude-haiku"
    assert response.headers["x-switchboard-provider"] == "sim-anthropic"


def test_a_routing_strategy_can_be_named_as_the_model(api: httpx.Client) -> None:
    # The cheapest model may be one no test worker serves: look at the job, not the answer.
    response = api.post(
        "/v1/chat/completions", json=chat("strategy:cost"), headers={"x-switchboard-wait-s": "0.2"}
    )
    assert response.status_code in (200, 504), response.text
    job_id = response.headers["x-switchboard-job-id"]
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["routing"]["strategy"] == "cost"
    assert job["model"] == job["routing"]["chain"]
    api.post(f"/v1/jobs/{job_id}/cancel")


def test_an_unknown_model_is_a_400_in_openai_error_shape(
    api: httpx.Client, sdk: openai.OpenAI
) -> None:
    response = api.post("/v1/chat/completions", json=chat("no-such-model"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "unknown_model")
    assert "no-such-model" in error["message"]
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(**chat("no-such-model"))
    assert raised.value.code == "unknown_model"


def test_a_bad_body_and_a_missing_key_are_openai_errors(
    api: httpx.Client, anonymous: httpx.Client
) -> None:
    bad = api.post("/v1/chat/completions", json=chat(n=2))
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    assert bad.json()["error"]["param"] == "n"
    nokey = anonymous.post("/v1/chat/completions", json=chat())
    assert nokey.status_code == 401
    assert nokey.json()["error"]["type"] == "authentication_error"


def test_a_context_length_failure_is_a_400_with_the_job_id(
    api: httpx.Client, sdk: openai.OpenAI, simulator: Simulator
) -> None:
    small_context(simulator, "sim-openai")
    response = api.post("/v1/chat/completions", json={**chat(), "messages": too_long()})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "context_length_exceeded")
    job_id = response.headers["x-switchboard-job-id"]
    assert error["job_id"] == job_id
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert (job["status"], job["error"]["code"]) == ("failed", "context_length")
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(**{**chat(), "messages": too_long()})


def test_a_job_that_outlasts_the_wait_is_a_504_naming_the_job(api: httpx.Client) -> None:
    response = api.post(
        "/v1/chat/completions", json=chat(IDLE_MODEL), headers={"x-switchboard-wait-s": "0.3"}
    )
    assert response.status_code == 504
    assert response.headers["x-should-retry"] == "false"
    job_id = response.json()["error"]["job_id"]
    assert response.json()["error"]["code"] == "wait_timeout"
    assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
    api.post(f"/v1/jobs/{job_id}/cancel")


def test_the_same_idempotency_key_answers_with_the_same_job(api: httpx.Client) -> None:
    body, key = chat(), {"Idempotency-Key": f"chat-{uuid.uuid4().hex}"}
    first = api.post("/v1/chat/completions", json=body, headers=key)
    again = api.post("/v1/chat/completions", json=body, headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["x-switchboard-job-id"] == first.headers["x-switchboard-job-id"]


def test_cancelling_the_job_ends_the_wait_with_a_409(api: httpx.Client) -> None:
    marker = uuid.uuid4().hex
    body = chat(IDLE_MODEL, metadata={"marker": marker})
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(
            api.post, "/v1/chat/completions", json=body, headers={"x-switchboard-wait-s": "20"}
        )
        found: list[str] = []

        def submitted() -> bool:
            jobs = api.get("/v1/jobs", params={"status": "queued", "limit": 100}).json()["data"]
            found.extend(j["id"] for j in jobs if j["metadata"].get("marker") == marker)
            return bool(found)

        wait_until(submitted, timeout=10)
        assert api.post(f"/v1/jobs/{found[0]}/cancel").status_code == 200
        response = waiting.result(timeout=10)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "job_cancelled"
    assert response.headers["x-switchboard-job-id"] == found[0]
