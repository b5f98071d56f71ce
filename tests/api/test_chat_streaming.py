"""``stream: true`` relayed live: the official ``openai`` SDK against the real API, workers,
Redis and simulator — deltas while the job runs, tool calls, usage, fallbacks before the
first delta, an error event after it, and clients that hang up."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import orjson
import pytest
import redis
from openai.types.chat import ChatCompletionChunk
from sqlalchemy import Engine, text

from app.constants import STREAM_PREFIX, STREAM_TTL_S
from app.providers.finish_reasons import openai_finish_reason
from app.relay.events import (
    FIELD,
    AttemptDeltas,
    AttemptDone,
    AttemptStarted,
    Event,
    JobEnded,
    decode,
)
from app.simulator.config import ErrorRates, SimModel, default_config
from app.simulator.control import with_models
from tests.conftest import Simulator, wait_for_jobs

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


def chat(model: Any = "sim-gpt-mini", **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"Tell me a story ({uuid.uuid4().hex[:8]})."}],
        "max_tokens": 64,
        **extra,
    }


TOKENS = 32  # what a slow() model streams, one delta per token, over a second


def slow(simulator: Simulator, *providers: str, errors: ErrorRates | None = None) -> None:
    """Providers whose models stream ``TOKENS`` tokens in a second, one delta each: a stream
    that lasts long enough to be watched arriving."""

    def change(model: SimModel) -> SimModel:
        update: dict[str, Any] = {"output_tokens": (TOKENS, TOKENS), "tokens_per_s": TOKENS}
        if errors is not None:
            update["errors"] = errors
        return model.model_copy(update=update)

    config = default_config()
    for provider in providers:
        config = with_models(config, provider, change)
    simulator.configure(config)


@pytest.fixture
def sdk(api_url: str, admin_key: str) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=api_url + "/v1", api_key=admin_key, max_retries=0)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def breakers_closed(api: httpx.Client) -> Iterator[None]:
    """Failures injected here open breakers; the next test starts with every one closed."""
    yield
    for breaker in api.get("/v1/breakers").json()["data"]:
        api.post(f"/v1/breakers/{breaker['target']}/reset").raise_for_status()


def drain(stream: Iterable[ChatCompletionChunk], into: list[ChatCompletionChunk]) -> None:
    """Read ``stream`` to its end, keeping every chunk that came before an exception."""
    for chunk in stream:
        into.append(chunk)


def job_of(chunk: ChatCompletionChunk) -> str:
    return chunk.id.removeprefix("chatcmpl-")


def content(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def attempts_of(api: httpx.Client, job_id: str) -> list[tuple[str, str, str | None]]:
    job = api.get(f"/v1/jobs/{job_id}").json()
    return [(a["model"], a["status"], a["error_class"]) for a in job["attempts"]]


def test_deltas_reach_the_sdk_while_the_job_is_still_running(
    sdk: openai.OpenAI, api: httpx.Client, simulator: Simulator
) -> None:
    slow(simulator, "sim-openai")
    stream = sdk.chat.completions.create(
        **chat(), stream=True, stream_options={"include_usage": True}
    )
    chunks: list[ChatCompletionChunk] = []
    status_at_first_text = None
    for chunk in stream:
        chunks.append(chunk)
        if status_at_first_text is None and content(chunks):
            status_at_first_text = api.get(f"/v1/jobs/{job_of(chunk)}").json()["status"]
    job = api.get(f"/v1/jobs/{job_of(chunks[0])}").json()

    assert status_at_first_text == "running"  # the first words came while it was generating
    assert job["status"] == "succeeded"  # and the stream ended once the answer was recorded
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) == TOKENS  # one chunk per delta the provider sent
    assert content(chunks) == job["result"]["text"]
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == [openai_finish_reason(job["result"]["finish_reason"])]
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        job["usage"]["input_tokens"],
        job["usage"]["output_tokens"],
    )
    assert {c.model for c in chunks} == {"sim-gpt-mini"}


def test_the_headers_name_the_job_and_the_last_chunk_its_cost(
    api: httpx.Client, engine: Engine, redis_client: redis.Redis, simulator: Simulator
) -> None:
    slow(simulator, "sim-openai")
    with api.stream("POST", "/v1/chat/completions", json=chat(stream=True)) as response:
        assert response.status_code == 200
        headers = response.headers
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    job_id = headers["x-switchboard-job-id"]
    assert headers["content-type"].startswith("text/event-stream")
    assert (headers["x-switchboard-model"], headers["x-switchboard-provider"]) == (
        "sim-gpt-mini",
        "sim-openai",
    )
    assert "x-switchboard-cost-usd" not in headers  # not known when the body began
    assert events[-1] == "[DONE]"
    last = orjson.loads(events[-2])
    assert last["choices"][0]["finish_reason"] is not None
    with engine.connect() as conn:
        cost = conn.execute(text("SELECT cost_usd FROM jobs WHERE id = :id"), {"id": job_id})
        assert Decimal(last["x_switchboard"]["cost_usd"]) == cost.scalar_one() > 0
    assert last["x_switchboard"]["job_id"] == job_id
    assert last["x_switchboard"]["attempts"] == 1
    # The relay's stream expires on its own.
    assert 0 < redis_client.ttl(STREAM_PREFIX + job_id) <= STREAM_TTL_S


@pytest.mark.parametrize("model", ["sim-gpt-mini", "sim-claude-haiku"])
def test_tool_calls_stream_in_openais_shape(
    sdk: openai.OpenAI, api: httpx.Client, model: str
) -> None:
    stream = sdk.chat.completions.create(
        **chat(model), tools=[WEATHER], tool_choice="required", stream=True
    )
    chunks = list(stream)
    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    job = api.get(f"/v1/jobs/{job_of(chunks[0])}").json()
    (recorded,) = job["result"]["tool_calls"]

    head, *fragments = calls
    assert head.index == 0
    assert (head.id, head.type) == (recorded["id"], "function")
    assert head.function is not None
    assert head.function.name == "get_weather"
    assert len(fragments) > 1  # the arguments arrived in pieces, as the provider sent them
    assert all(f.index == 0 and f.id is None for f in fragments)
    arguments = head.function.arguments or ""
    arguments += "".join(f.function.arguments or "" for f in fragments if f.function)
    assert arguments == recorded["arguments"]
    assert set(json.loads(arguments)) == {"city", "days"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


@pytest.mark.parametrize("failure", ["context_length", "broken_stream"])
def test_a_failure_before_the_first_delta_is_invisible_the_fallback_streams(
    sdk: openai.OpenAI, api: httpx.Client, simulator: Simulator, failure: str
) -> None:
    def change(model: SimModel) -> SimModel:
        if failure == "context_length":
            return model.model_copy(update={"context_window": 64})
        # The 200 comes, then a first chunk cut in half: malformed before any content.
        return model.model_copy(update={"errors": ErrorRates(malformed=1.0)})

    simulator.configure(with_models(default_config(), "sim-openai", change))
    body = chat(["sim-gpt-mini", "sim-claude-haiku"])
    if failure == "context_length":
        body["messages"] = [{"role": "user", "content": "word " * 400}]
    response = sdk.chat.completions.with_streaming_response.create(**body, stream=True)
    with response as raw:
        assert raw.headers["x-switchboard-provider"] == "sim-anthropic"
        chunks = list(raw.parse())
    job_id = job_of(chunks[0])
    job = api.get(f"/v1/jobs/{job_id}").json()

    assert {c.model for c in chunks} == {"sim-claude-haiku"}
    assert content(chunks) == job["result"]["text"]
    tried = attempts_of(api, job_id)
    assert tried[-1] == ("sim-claude-haiku", "succeeded", None)
    expected = "context_length" if failure == "context_length" else "server_error"
    assert set(tried[:-1]) == {("sim-gpt-mini", "failed", expected)}
    assert len(tried) == (2 if failure == "context_length" else 4)  # a broken stream: 2 retries


def test_a_failure_after_content_ends_the_stream_with_an_error_and_the_job_goes_on(
    sdk: openai.OpenAI, api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    slow(simulator, "sim-openai", errors=ErrorRates(stream_error=1.0))
    stream = sdk.chat.completions.create(**chat(["sim-gpt-mini", "sim-claude-haiku"]), stream=True)
    received: list[ChatCompletionChunk] = []
    with pytest.raises(openai.APIError) as raised:
        drain(stream, received)
    job_id = job_of(received[0])

    assert content(received)  # some words came before it broke off
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["code"] == "stream_interrupted"
    assert raised.value.body["job_id"] == job_id
    assert job_id in raised.value.message
    assert wait_for_jobs(engine, [job_id]) == {job_id: "succeeded"}
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["served_model"] == "sim-claude-haiku"
    tried = attempts_of(api, job_id)
    assert tried[-1] == ("sim-claude-haiku", "succeeded", None)
    assert tried[0][:2] == ("sim-gpt-mini", "failed")
    # Retried, until its breaker opened and it was skipped for the fallback.
    assert {(m, s) for m, s, _ in tried[1:-1]} <= {
        ("sim-gpt-mini", "failed"),
        ("sim-gpt-mini", "skipped"),
    }
    # The client got the first attempt's first half and then the error: nothing after it.
    assert 0 < len(content(received).split()) < TOKENS


def test_a_client_that_hangs_up_leaves_the_job_to_finish_and_be_recorded_once(
    sdk: openai.OpenAI, api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    slow(simulator, "sim-openai")
    stream = sdk.chat.completions.create(**chat(), stream=True)
    received = []
    for chunk in stream:
        received.append(chunk)
        if len(content(received).split()) >= 2:
            break
    stream.close()
    job_id = job_of(received[0])

    assert wait_for_jobs(engine, [job_id]) == {job_id: "succeeded"}
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert attempts_of(api, job_id) == [("sim-gpt-mini", "succeeded", None)]
    assert job["usage"]["output_tokens"] == TOKENS
    assert len(job["result"]["text"].split()) == TOKENS
    assert Decimal(job["cost_usd"]) > 0
    assert simulator.stats()["providers"]["sim-openai"]["requests"] == 1


def test_a_second_reader_of_the_same_job_gets_the_whole_stream_from_its_start(
    sdk: openai.OpenAI, api: httpx.Client, simulator: Simulator
) -> None:
    slow(simulator, "sim-openai")
    body = chat()
    key = {"Idempotency-Key": f"stream-{uuid.uuid4().hex}"}
    first = sdk.chat.completions.create(**body, stream=True, extra_headers=key)
    early: list[ChatCompletionChunk] = []
    for chunk in first:
        early.append(chunk)
        if len(content(early).split()) >= 5:
            break
    # Same key, same job: this reader arrives mid-stream and still misses nothing.
    late = list(sdk.chat.completions.create(**body, stream=True, extra_headers=key))
    rest = list(first)
    job = api.get(f"/v1/jobs/{job_of(early[0])}").json()

    assert job_of(late[0]) == job_of(early[0])
    assert content(late) == content(early + rest) == job["result"]["text"]
    assert len(attempts_of(api, job["id"])) == 1


def test_a_job_that_fails_before_any_delta_gets_the_same_status_as_without_streaming(
    sdk: openai.OpenAI, simulator: Simulator
) -> None:
    simulator.configure(
        with_models(
            default_config(), "sim-openai", lambda m: m.model_copy(update={"context_window": 64})
        )
    )
    body = {**chat(), "messages": [{"role": "user", "content": "word " * 400}]}
    with pytest.raises(openai.BadRequestError) as raised:
        list(sdk.chat.completions.create(**body, stream=True))
    assert raised.value.code == "context_length_exceeded"
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["job_id"]


def test_only_jobs_a_caller_waits_on_touch_redis(
    api: httpx.Client, redis_client: redis.Redis, engine: Engine
) -> None:
    queued = api.post("/v1/jobs", json=chat())
    assert queued.status_code == 202, queued.text
    whole = api.post("/v1/chat/completions", json=chat())
    assert whole.status_code == 200
    streamed = api.post("/v1/chat/completions", json=chat(stream=True))
    assert streamed.status_code == 200
    wait_for_jobs(engine, [queued.json()["id"]])

    def events(job_id: str) -> list[Event]:
        entries = redis_client.xrange(STREAM_PREFIX + job_id)
        return [e for _, fields in entries if (e := decode(fields[FIELD])) is not None]

    assert not redis_client.exists(STREAM_PREFIX + queued.json()["id"])  # nobody waits on it
    # Answered whole: one entry, the end the waiting request woke up to.
    assert [type(e) for e in events(whole.headers["x-switchboard-job-id"])] == [JobEnded]
    kinds = [type(e) for e in events(streamed.headers["x-switchboard-job-id"])]
    assert kinds[0] is AttemptStarted
    assert AttemptDeltas in kinds
    assert kinds[-2:] == [AttemptDone, JobEnded]
