"""Chunks as the ``openai`` SDK reads them: text and tool-call deltas, the finish, the usage
chunk, and the ``x_switchboard`` extension on the last chunk."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from openai.types.chat import ChatCompletionChunk

from app.chat.answers import chunks, completion
from app.chat.chunks import DONE, ChunkWriter, served
from app.db.tables import JobRow
from app.providers import TextDelta, ToolCallDelta


def parsed(data: bytes) -> list[ChatCompletionChunk]:
    events = [line[6:] for line in data.decode().split("\n") if line.startswith("data: ")]
    return [ChatCompletionChunk.model_validate(orjson.loads(e)) for e in events if e != "[DONE]"]


def test_deltas_become_chunks_the_sdk_accumulates() -> None:
    writer = ChunkWriter("chatcmpl-job_1", 1_700_000_000, "sim-gpt-mini")
    deltas = [
        TextDelta("Let me check."),
        ToolCallDelta(0, "call_1", "get_weather", ""),
        ToolCallDelta(0, arguments='{"city"'),
        ToolCallDelta(0, arguments=': "Oslo"}'),
        ToolCallDelta(1, "call_2", "get_time", "{}"),
    ]
    out = parsed(writer.role() + writer.deltas(deltas) + writer.finish("tool_calls"))

    assert out[0].choices[0].delta.role == "assistant"
    assert out[1].choices[0].delta.content == "Let me check."
    calls = [call for chunk in out for call in chunk.choices[0].delta.tool_calls or []]
    assert [(c.index, c.id, c.function and c.function.name) for c in calls] == [
        (0, "call_1", "get_weather"),
        (0, None, None),
        (0, None, None),
        (1, "call_2", "get_time"),
    ]
    arguments = "".join(c.function.arguments or "" for c in calls if c.index == 0 and c.function)
    assert arguments == '{"city": "Oslo"}'
    assert out[-1].choices[0].finish_reason == "tool_calls"
    assert {c.id for c in out} == {"chatcmpl-job_1"}
    assert {c.model for c in out} == {"sim-gpt-mini"}


def job(**fields: Any) -> JobRow:
    return JobRow(
        id="job_1",
        status="succeeded",
        models=["sim-gpt-mini"],
        served_model="sim-gpt-mini",
        served_provider="sim-openai",
        result={"text": "Hi there", "finish_reason": "stop", "tool_calls": []},
        input_tokens=5,
        output_tokens=2,
        cached_tokens=0,
        attempt_count=2,
        cost_usd=Decimal("0.0000120"),
        created_at=datetime(2026, 1, 2, tzinfo=UTC),
        **fields,
    )


def test_a_whole_answer_ends_with_the_cost_on_its_last_chunk() -> None:
    finished = job()
    for include_usage in (True, False):
        events = list(
            chunks(completion(finished), include_usage=include_usage, extension=served(finished))
        )
        assert events[-1] == DONE
        out = parsed(b"".join(events))
        last = orjson.loads(events[-2][6:])
        assert last["x_switchboard"] == {
            "job_id": "job_1",
            "model": "sim-gpt-mini",
            "provider": "sim-openai",
            "attempts": 2,
            "cost_usd": "0.000012",
        }
        assert sum("x_switchboard" in orjson.loads(e[6:]) for e in events[:-1]) == 1
        assert (out[-1].usage is not None) == include_usage
        assert "".join(c.choices[0].delta.content or "" for c in out if c.choices) == "Hi there"
