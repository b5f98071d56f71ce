"""Incremental stream parsing on every recorded stream: lines in, deltas out as they arrive,
and the deltas add up to exactly the completion ``parse_stream`` makes of the same lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.providers import (
    Completion,
    Delta,
    ProviderError,
    TextDelta,
    ToolCallDelta,
    get_adapter,
)

WIRE = Path(__file__).resolve().parents[1] / "fixtures" / "wire"
STREAMS = sorted(WIRE.glob("*_stream_*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def read(fixture: dict[str, Any]) -> tuple[list[list[Delta]], Completion | ProviderError]:
    """Each line's deltas, and the completion (or the error) at the end."""
    reader = get_adapter(fixture["provider"]).stream_reader(httpx.Headers(fixture["headers"]))
    per_line: list[list[Delta]] = []
    try:
        for line in fixture["body"]:
            per_line.append(reader.feed(line))
        per_line.append(reader.end())
        return per_line, reader.finish()
    except ProviderError as error:
        return per_line, error


def added_up(deltas: list[Delta]) -> tuple[str, list[tuple[str, str, str]]]:
    """What a client accumulating the deltas ends up with: the text and the tool calls."""
    text = "".join(d.text for d in deltas if isinstance(d, TextDelta))
    calls: dict[int, list[str]] = {}
    for delta in deltas:
        if isinstance(delta, ToolCallDelta):
            call = calls.setdefault(delta.index, ["", "", ""])
            call[0] = call[0] or (delta.id or "")
            call[1] = call[1] or (delta.name or "")
            call[2] += delta.arguments
    return text, [(c[0], c[1], c[2]) for _, c in sorted(calls.items())]


def test_every_recorded_stream_is_here() -> None:
    providers = {load(path)["provider"] for path in STREAMS}
    assert providers == {"openai", "anthropic", "gemini", "ollama", "groq", "openrouter"}


@pytest.mark.parametrize("path", STREAMS, ids=[p.name for p in STREAMS])
def test_the_deltas_add_up_to_the_completion(path: Path) -> None:
    fixture = load(path)
    per_line, outcome = read(fixture)
    completion = outcome.completion if isinstance(outcome, ProviderError) else outcome
    assert completion is not None
    text, calls = added_up([d for deltas in per_line for d in deltas])
    assert text == (completion.text or "")
    assert calls == [(c.id, c.name, c.arguments) for c in completion.tool_calls]


@pytest.mark.parametrize("path", STREAMS, ids=[p.name for p in STREAMS])
def test_the_reader_agrees_with_parse_stream(path: Path) -> None:
    fixture = load(path)
    _, outcome = read(fixture)
    adapter = get_adapter(fixture["provider"])
    try:
        whole: Completion | ProviderError = adapter.parse_stream(
            fixture["body"], headers=httpx.Headers(fixture["headers"])
        )
    except ProviderError as error:
        whole = error
    if isinstance(whole, ProviderError):
        assert isinstance(outcome, ProviderError)
        assert (outcome.kind, outcome.message) == (whole.kind, whole.message)
    else:
        assert outcome == whole


@pytest.mark.parametrize("path", STREAMS, ids=[p.name for p in STREAMS])
def test_deltas_come_out_as_their_lines_go_in(path: Path) -> None:
    fixture = load(path)
    per_line, outcome = read(fixture)
    fed = [i for i, deltas in enumerate(per_line) if deltas]
    completion = outcome.completion if isinstance(outcome, ProviderError) else outcome
    assert completion is not None
    if not completion.text and not completion.tool_calls:
        assert fed == []  # a refusal streams nothing
        return
    # The first delta comes out of an early line, long before the stream ends.
    assert fed[0] < len(fixture["body"]) // 2


def test_openrouter_keep_alive_comments_and_groq_usage_are_read() -> None:
    reader = get_adapter("groq").stream_reader()
    chunk: dict[str, Any] = {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}
    finish = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    usage = {"choices": [], "x_groq": {"usage": {"prompt_tokens": 3, "completion_tokens": 1}}}
    lines = [": OPENROUTER PROCESSING", "", f"data: {json.dumps(chunk)}", ""]
    assert [reader.feed(line) for line in lines] == [[], [], [], [TextDelta("Hi")]]
    for payload in (finish, usage):
        reader.feed(f"data: {json.dumps(payload)}")
        reader.feed("")
    reader.feed("data: [DONE]")
    assert reader.feed("") == []
    completion = reader.finish()
    assert (completion.text, completion.usage.total_tokens) == ("Hi", 4)


def test_a_last_event_without_its_blank_line_comes_out_at_the_end() -> None:
    reader = get_adapter("gemini").stream_reader()
    chunk = {"candidates": [{"content": {"parts": [{"text": "Done."}]}, "finishReason": "STOP"}]}
    assert reader.feed(f"data: {json.dumps(chunk)}") == []
    assert reader.end() == [TextDelta("Done.")]
    assert reader.finish().text == "Done."


def test_an_error_inside_the_stream_keeps_what_came_before() -> None:
    reader = get_adapter("anthropic").stream_reader()
    events = [
        {"type": "message_start", "message": {"id": "m", "model": "c", "usage": {}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Par"}},
    ]
    deltas = [
        d for e in events for line in (f"data: {json.dumps(e)}", "") for d in reader.feed(line)
    ]
    assert deltas == [TextDelta("Par")]
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    reader.feed("event: error")
    reader.feed(f"data: {json.dumps(error)}")
    with pytest.raises(ProviderError) as raised:
        reader.feed("")
    assert raised.value.kind == "overloaded"
    assert raised.value.completion is not None
    assert raised.value.completion.text == "Par"


def test_a_tool_call_without_argument_fragments_streams_its_empty_object() -> None:
    reader = get_adapter("openai").stream_reader()
    head = {"index": 0, "id": "call_1", "function": {"name": "now"}}
    chunks = [
        {"choices": [{"index": 0, "delta": {"tool_calls": [head]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    deltas = [
        d for c in chunks for line in (f"data: {json.dumps(c)}", "") for d in reader.feed(line)
    ]
    assert deltas == [ToolCallDelta(0, "call_1", "now"), ToolCallDelta(0, arguments="{}")]
    (call,) = reader.finish().tool_calls
    assert call.arguments == "{}"
