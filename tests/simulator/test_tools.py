"""Simulated tool calls, in every format, whole and streamed, read back by the gateway's own
adapters: a request that offers tools gets a call to one, until a tool has answered."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from app.providers import ChatCall, Completion, get_adapter
from tests.simulator.test_formats import assert_shape

if TYPE_CHECKING:
    from tests.simulator.conftest import RunningSimulator

BASES = {
    "openai": ("/sim-openai/v1", "sim-gpt-mini"),
    "anthropic": ("/sim-anthropic/v1", "sim-claude-haiku"),
    "gemini": ("/sim-gemini/v1beta", "sim-gemini-flash"),
    "ollama": ("/sim-ollama", "sim-llama-small"),
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
TOOL_FINISH = {"openai": "tool_calls", "anthropic": "tool_use", "gemini": "STOP", "ollama": "stop"}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
ASKED = [{"role": "user", "content": "Weather in Paris?"}]
ANSWERED = [
    *ASKED,
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'},
]


def call(sim: RunningSimulator, fmt: str, *, stream: bool = False, **fields: Any) -> Completion:
    base, model = BASES[fmt]
    chat = ChatCall(base_url=sim.url + base, model=model, max_tokens=64, stream=stream, **fields)
    adapter = get_adapter(fmt)
    request = adapter.build_request(chat)
    with httpx.Client() as client:
        response = client.send(request)
    assert response.status_code == 200, response.text
    if stream:
        return adapter.parse_stream(response.text.splitlines(), headers=response.headers)
    return adapter.parse_response(response)


@pytest.mark.parametrize("fmt", list(BASES))
def test_offered_tools_get_a_call_with_arguments_of_the_schema(
    sim: RunningSimulator, fmt: str
) -> None:
    whole = call(sim, fmt, messages=ASKED, tools=[WEATHER, CLOCK])
    streamed = call(sim, fmt, messages=ASKED, tools=[WEATHER, CLOCK], stream=True)
    for completion in (whole, streamed):
        (tool_call,) = completion.tool_calls
        assert tool_call.name == "get_weather"
        arguments = json.loads(tool_call.arguments)
        assert isinstance(arguments["city"], str)
        assert isinstance(arguments["days"], int)
        assert arguments["unit"] == "celsius"
        assert not completion.text
        assert completion.usage.completion_tokens > 0
    assert json.loads(streamed.tool_calls[0].arguments) == json.loads(whole.tool_calls[0].arguments)
    assert whole.finish_reason == TOOL_FINISH[fmt]


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "gemini"])
def test_a_forced_tool_is_the_one_called(sim: RunningSimulator, fmt: str) -> None:
    choice = {"type": "function", "function": {"name": "get_time"}}
    completion = call(sim, fmt, messages=ASKED, tools=[WEATHER, CLOCK], tool_choice=choice)
    assert [c.name for c in completion.tool_calls] == ["get_time"]


@pytest.mark.parametrize("fmt", list(BASES))
def test_after_a_tool_result_the_model_answers_in_text(sim: RunningSimulator, fmt: str) -> None:
    completion = call(sim, fmt, messages=ANSWERED, tools=[WEATHER], stream=fmt != "gemini")
    assert completion.tool_calls == []
    assert completion.text


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "gemini"])
def test_tool_choice_none_answers_in_text(sim: RunningSimulator, fmt: str) -> None:
    completion = call(sim, fmt, messages=ASKED, tools=[WEATHER], tool_choice="none")
    assert completion.tool_calls == []
    assert completion.text


def test_tool_calls_have_the_recorded_shapes(sim: RunningSimulator) -> None:
    openai = sim.chat("openai", tools=[WEATHER]).json()
    assert_shape(openai, sim.wire_fixture("openai_chat_tool_call")["body"])
    anthropic = sim.chat(
        "anthropic",
        tools=[{"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}],
    ).json()
    recorded = sim.wire_fixture("anthropic_tool_use")["body"]
    assert_shape(anthropic, recorded, ignore=frozenset({"content"}))
    (block,) = anthropic["content"]
    tool_use = next(b for b in recorded["content"] if b["type"] == "tool_use")
    assert_shape(block, tool_use, ignore=frozenset({"input"}))
    gemini = sim.chat("gemini", tools=[{"functionDeclarations": [WEATHER["function"]]}]).json()
    recorded = sim.wire_fixture("gemini_tool_call")["body"]
    extras = frozenset({"parts", "finishMessage", "avgLogprobs", "thoughtsTokenCount"})
    assert_shape(gemini, recorded, ignore=extras)
    (part,) = gemini["candidates"][0]["content"]["parts"]
    parts = recorded["candidates"][0]["content"]["parts"]
    assert_shape(part, next(p for p in parts if "functionCall" in p), ignore=frozenset({"args"}))
    streamed = sim.chat("openai", tools=[WEATHER], stream=True)
    chunks = sim.sse_data(streamed.text)
    head = chunks[0]["choices"][0]["delta"]["tool_calls"][0]
    assert (head["index"], head["type"], head["function"]["arguments"]) == (0, "function", "")
    assert head["id"].startswith("call_")
    fragments = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[1:-2]]
    assert all(set(f) == {"index", "function"} for f in fragments)
    assert len(fragments) > 1
