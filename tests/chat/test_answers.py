"""A finished job rendered as OpenAI's answer: tool calls, as the SDK's types read them, and
the error statuses OpenAI's clients act on."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
from openai.types.chat import ChatCompletion as SdkCompletion
from openai.types.chat import ChatCompletionChunk

from app.chat.answers import chunks, completion, failure, job_headers
from app.db.tables import JobRow

CALL = {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}


def tool_job() -> JobRow:
    return JobRow(
        id="job_abc",
        status="succeeded",
        models=["sim-gpt-mini"],
        served_model="sim-gpt-mini",
        served_provider="sim-openai",
        result={"text": None, "finish_reason": "tool_calls", "tool_calls": [CALL]},
        input_tokens=12,
        output_tokens=7,
        cached_tokens=4,
        cost_usd=Decimal("0.0000060"),
        created_at=datetime(2026, 1, 2, tzinfo=UTC),
    )


def test_tool_calls_parse_with_the_openai_sdk() -> None:
    parsed = SdkCompletion.model_validate(completion(tool_job()).model_dump(mode="json"))
    (call,) = parsed.choices[0].message.tool_calls or []
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_1",
        "get_weather",
        '{"city": "Paris"}',
    )
    assert parsed.choices[0].finish_reason == "tool_calls"
    assert parsed.usage is not None
    assert (parsed.usage.total_tokens, parsed.usage.prompt_tokens_details.cached_tokens) == (19, 4)
    assert job_headers(tool_job())["x-switchboard-cost-usd"] == "0.000006"


def test_tool_calls_stream_as_one_delta_with_their_index() -> None:
    events = list(chunks(completion(tool_job()), include_usage=True))
    assert events[-1] == b"data: [DONE]\n\n"
    parsed = [ChatCompletionChunk.model_validate(orjson.loads(e[6:])) for e in events[:-1]]
    calls = [c for p in parsed for ch in p.choices for c in ch.delta.tool_calls or []]
    assert [(c.index, c.id, c.function and c.function.name) for c in calls] == [
        (0, "call_1", "get_weather")
    ]
    assert parsed[-1].usage is not None
    assert parsed[-1].usage.completion_tokens == 7


def test_failed_jobs_map_to_statuses_openai_clients_handle() -> None:
    def status_of(error_class: str) -> tuple[int, str | None]:
        job = JobRow(id="job_x", status="failed", error_class=error_class, error_message="m")
        status, body = failure(job)
        return status, body["error"]["code"]

    assert status_of("context_length") == (400, "context_length_exceeded")
    assert status_of("rate_limit") == (429, "rate_limit_exceeded")
    assert status_of("auth")[0] == 502  # the provider refused the gateway's key, not the caller's
    assert status_of("overloaded")[0] == 503
    assert status_of("deadline")[0] == 504
