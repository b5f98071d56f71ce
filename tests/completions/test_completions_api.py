"""``POST /v1/completions``: OpenAI's legacy text completions, answered by a real chat job."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import httpx
import openai
import orjson
import pytest
from openai.types import Completion
from sqlalchemy import Engine, text

from app.simulator.config import default_config
from app.simulator.control import with_models
from tests.api.test_chat_streaming import TOKENS, slow
from tests.conftest import Simulator

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]


@pytest.fixture
def sdk(api_url: str, admin_key: str) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=api_url + "/v1", api_key=admin_key, max_retries=0)
    yield client
    client.close()


def prompt() -> str:
    return f"Once upon a time ({uuid.uuid4().hex[:8]})"


def test_the_sdk_gets_a_text_completion_of_the_chat_job(
    sdk: openai.OpenAI, api: httpx.Client, engine: Engine
) -> None:
    asked = prompt()
    raw = sdk.completions.with_raw_response.create(
        model="sim-gpt-mini", prompt=asked, max_tokens=40, temperature=0.2
    )
    answer = raw.parse()
    job_id = raw.headers["x-switchboard-job-id"]
    assert answer.id == f"cmpl-{job_id}"
    assert answer.object == "text_completion"
    assert answer.model == "sim-gpt-mini"
    (choice,) = answer.choices
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert (job["kind"], job["priority"], job["status"]) == ("chat", "high", "succeeded")
    assert choice.text == job["result"]["text"]
    assert choice.index == 0
    assert choice.logprobs is None
    assert choice.finish_reason in ("stop", "length")
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (
        job["usage"]["input_tokens"],
        job["usage"]["output_tokens"],
    )
    assert Decimal(raw.headers["x-switchboard-cost-usd"]) == Decimal(job["cost_usd"]) > 0
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT request FROM jobs WHERE id = :id"), {"id": job_id})
        request = stored.scalar_one()
    assert request["messages"] == [{"role": "user", "content": asked}]
    assert (request["max_tokens"], request["temperature"]) == (40, 0.2)


def test_max_tokens_defaults_to_openais_16(sdk: openai.OpenAI, api: httpx.Client) -> None:
    raw = sdk.completions.with_raw_response.create(model="sim-claude-haiku", prompt=prompt())
    answer = raw.parse()
    assert answer.usage is not None
    assert answer.usage.completion_tokens <= 16
    job = api.get(f"/v1/jobs/{raw.headers['x-switchboard-job-id']}").json()
    assert job["served_model"] == "sim-claude-haiku"
    assert answer.choices[0].finish_reason in ("stop", "length")  # Anthropic's own reasons mapped


def test_streaming_sends_the_text_then_the_finish_then_usage(
    sdk: openai.OpenAI, api: httpx.Client
) -> None:
    chunks = list(
        sdk.completions.create(
            model="sim-gpt-mini",
            prompt=prompt(),
            max_tokens=30,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert {c.object for c in chunks} == {"text_completion"}
    job = api.get(f"/v1/jobs/{chunks[0].id.removeprefix('cmpl-')}").json()
    assert "".join(c.choices[0].text for c in chunks if c.choices) == job["result"]["text"]
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert len(finishes) == 1
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.total_tokens == job["usage"]["total_tokens"]


def test_streaming_relays_the_text_while_the_job_is_still_running(
    sdk: openai.OpenAI, api: httpx.Client, simulator: Simulator
) -> None:
    slow(simulator, "sim-openai")
    stream = sdk.completions.create(
        model="sim-gpt-mini", prompt=prompt(), max_tokens=64, stream=True
    )
    chunks: list[Completion] = []
    status_at_first_text = None
    for chunk in stream:
        chunks.append(chunk)
        if status_at_first_text is None and chunk.choices and chunk.choices[0].text:
            status_at_first_text = api.get(f"/v1/jobs/{chunk.id.removeprefix('cmpl-')}").json()
    assert status_at_first_text is not None
    assert status_at_first_text["status"] == "running"  # the first words came while generating
    job = api.get(f"/v1/jobs/{status_at_first_text['id']}").json()
    assert job["status"] == "succeeded"
    texts = [c.choices[0].text for c in chunks if c.choices and c.choices[0].text]
    assert len(texts) == TOKENS  # one chunk per delta the provider sent
    assert "".join(texts) == job["result"]["text"]
    assert {c.object for c in chunks} == {"text_completion"}
    assert {c.model for c in chunks} == {"sim-gpt-mini"}


def test_a_streamed_text_completion_names_its_job_and_ends_with_its_cost(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    slow(simulator, "sim-openai")
    body = {"model": "sim-gpt-mini", "prompt": prompt(), "max_tokens": 64, "stream": True}
    with api.stream("POST", "/v1/completions", json=body) as response:
        assert response.status_code == 200
        headers = response.headers
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    job_id = headers["x-switchboard-job-id"]
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-switchboard-model"] == "sim-gpt-mini"
    assert events[-1] == "[DONE]"
    last = orjson.loads(events[-2])
    assert last["choices"][0]["finish_reason"] in ("stop", "length")
    with engine.connect() as conn:
        cost = conn.execute(text("SELECT cost_usd FROM jobs WHERE id = :id"), {"id": job_id})
        assert Decimal(last["x_switchboard"]["cost_usd"]) == cost.scalar_one() > 0
    assert last["x_switchboard"]["job_id"] == job_id


def test_a_streamed_text_completion_that_fails_before_any_text_is_the_same_error(
    sdk: openai.OpenAI, simulator: Simulator
) -> None:
    simulator.configure(
        with_models(
            default_config(), "sim-openai", lambda m: m.model_copy(update={"context_window": 64})
        )
    )
    with pytest.raises(openai.BadRequestError) as raised:
        list(sdk.completions.create(model="sim-gpt-mini", prompt="word " * 400, stream=True))
    assert raised.value.code == "context_length_exceeded"


def test_what_the_gateway_cannot_do_is_a_400_naming_the_field(api: httpx.Client) -> None:
    for extra, param in (
        ({"n": 2}, "n"),
        ({"echo": True}, "echo"),
        ({"logprobs": 2}, "logprobs"),
        ({"best_of": 3}, "best_of"),
        ({"prompt": ["one", "two"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
    ):
        body = {"model": "sim-gpt-mini", "prompt": "hello", **extra}
        response = api.post("/v1/completions", json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_a_list_of_one_prompt_and_a_fallback_list_are_served(api: httpx.Client) -> None:
    body = {"model": ["sim-gpt-mini", "sim-claude-haiku"], "prompt": [prompt()], "max_tokens": 8}
    response = api.post("/v1/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["text"]
    assert response.headers["x-switchboard-provider"] == "sim-openai"
