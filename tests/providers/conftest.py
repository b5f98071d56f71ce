"""Shared inputs for the provider adapter tests."""

from __future__ import annotations

from typing import Any

import pytest

from app.providers import ChatCall

SECRET_KEY = "sk-test-0123456789abcdef-SECRET"

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city on a date",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "date": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def secret_key() -> str:
    """An API key that must never show up in a message, repr or log line."""
    return SECRET_KEY


@pytest.fixture
def weather_tool() -> dict[str, Any]:
    return WEATHER_TOOL


@pytest.fixture
def chat_call() -> ChatCall:
    """A representative call: system + user, a tool, stop, max_tokens, temperature."""
    return ChatCall(
        base_url="https://provider.test/v1/",
        model="some-model",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris?"},
        ],
        api_key=SECRET_KEY,
        max_tokens=256,
        temperature=0.2,
        stop=["END"],
        tools=[WEATHER_TOOL],
        extra_headers={"x-trace-id": "trace-1"},
    )


@pytest.fixture
def tool_round_trip_messages() -> list[dict[str, Any]]:
    """A conversation where the assistant called a tool and the tool answered."""
    return [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
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
