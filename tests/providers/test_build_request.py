"""What each wire format puts on the wire for a ChatCall: URL, method, headers, JSON body."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from app.errors import InvalidInput
from app.providers import (
    ChatCall,
    EmbeddingCall,
    InvalidProviderRequest,
    get_adapter,
    get_embeddings_adapter,
    send,
)


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


def test_openai_request(chat_call: ChatCall, secret_key: str, weather_tool: dict[str, Any]) -> None:
    request = get_adapter("openai").build_request(chat_call)

    assert request.method == "POST"
    assert str(request.url) == "https://provider.test/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {secret_key}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-trace-id"] == "trace-1"
    assert body_of(request) == {
        "model": "some-model",
        "messages": chat_call.messages,
        "max_completion_tokens": 256,
        "temperature": 0.2,
        "stop": ["END"],
        "tools": [weather_tool],
    }


@pytest.mark.parametrize(
    ("name", "max_tokens_field"),
    [("openrouter", "max_tokens"), ("vllm", "max_tokens"), ("lmstudio", "max_tokens")],
)
def test_openai_compatible_formats_use_their_max_tokens_field(
    chat_call: ChatCall, name: str, max_tokens_field: str
) -> None:
    body = body_of(get_adapter(name).build_request(chat_call))
    assert body[max_tokens_field] == 256
    assert "max_completion_tokens" not in body


def test_groq_uses_max_completion_tokens(chat_call: ChatCall) -> None:
    body = body_of(get_adapter("groq").build_request(chat_call))
    assert body["max_completion_tokens"] == 256


def test_openai_stream_asks_for_usage(chat_call: ChatCall) -> None:
    body = body_of(get_adapter("openai").build_request(replace(chat_call, stream=True)))
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_only_set_fields_are_sent_and_no_key_means_no_auth_header() -> None:
    call = ChatCall(base_url="http://localhost:8000/v1", model="m", messages=[])
    request = get_adapter("vllm").build_request(call)
    assert body_of(request) == {"model": "m", "messages": []}
    assert "authorization" not in request.headers


def test_anthropic_request(
    chat_call: ChatCall, secret_key: str, weather_tool: dict[str, Any]
) -> None:
    request = get_adapter("anthropic").build_request(chat_call)

    assert request.method == "POST"
    assert str(request.url) == "https://provider.test/v1/messages"
    assert request.headers["x-api-key"] == secret_key
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.headers["x-trace-id"] == "trace-1"
    assert body_of(request) == {
        "model": "some-model",
        "max_tokens": 256,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}],
        "temperature": 0.2,
        "stop_sequences": ["END"],
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather for a city on a date",
                "input_schema": weather_tool["function"]["parameters"],
            }
        ],
    }


def test_anthropic_defaults_max_tokens_and_translates_tool_turns(
    tool_round_trip_messages: list[dict[str, Any]],
) -> None:
    call = ChatCall(
        base_url="https://api.anthropic.com/v1",
        model="claude",
        messages=tool_round_trip_messages,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    body = body_of(get_adapter("anthropic").build_request(call))

    assert body["max_tokens"] == 4096
    assert body["system"] == "Be brief."
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temp_c": 18}'}
            ],
        },
    ]


def test_gemini_request(chat_call: ChatCall, secret_key: str, weather_tool: dict[str, Any]) -> None:
    call = replace(chat_call, base_url="https://generativelanguage.googleapis.com/v1beta")
    request = get_adapter("gemini").build_request(call)

    assert request.method == "POST"
    assert str(request.url) == (
        "https://generativelanguage.googleapis.com/v1beta/models/some-model:generateContent"
    )
    assert request.headers["x-goog-api-key"] == secret_key
    assert secret_key not in str(request.url)
    assert body_of(request) == {
        "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}],
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Weather for a city on a date",
                        "parameters": weather_tool["function"]["parameters"],
                    }
                ]
            }
        ],
        "generationConfig": {"maxOutputTokens": 256, "temperature": 0.2, "stopSequences": ["END"]},
    }


def test_gemini_stream_url_and_tool_turns(tool_round_trip_messages: list[dict[str, Any]]) -> None:
    call = ChatCall(
        base_url="https://g.test/v1beta",
        model="models/gemini-2.5-flash",
        messages=tool_round_trip_messages,
        tool_choice="required",
        stream=True,
    )
    request = get_adapter("gemini").build_request(call)
    body = body_of(request)

    assert str(request.url) == (
        "https://g.test/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}}],
        },
    ]


def test_ollama_request(chat_call: ChatCall, weather_tool: dict[str, Any]) -> None:
    call = replace(chat_call, base_url="http://localhost:11434", api_key=None, top_p=0.9)
    request = get_adapter("ollama").build_request(call)

    assert request.method == "POST"
    assert str(request.url) == "http://localhost:11434/api/chat"
    assert "authorization" not in request.headers
    assert body_of(request) == {
        "model": "some-model",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris?"},
        ],
        "stream": False,
        "options": {"num_predict": 256, "temperature": 0.2, "top_p": 0.9, "stop": ["END"]},
        "tools": [weather_tool],
    }


def test_ollama_tool_turns_carry_objects_and_images_as_base64(
    tool_round_trip_messages: list[dict[str, Any]],
) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages = [
        *tool_round_trip_messages,
        {"role": "user", "content": [{"type": "text", "text": "And this?"}, image]},
    ]
    call = ChatCall(base_url="http://localhost:11434/", model="llava", messages=messages)
    sent = body_of(get_adapter("ollama").build_request(call))["messages"]

    assert sent[2]["tool_calls"] == [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert sent[3] == {"role": "tool", "content": '{"temp_c": 18}', "tool_name": "get_weather"}
    assert sent[4] == {"role": "user", "content": "And this?", "images": ["iVBORw0KGgo="]}


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("openai", "https://provider.test/v1/embeddings"),
        ("gemini", "https://provider.test/v1/models/emb:batchEmbedContents"),
        ("ollama", "https://provider.test/v1/api/embed"),
    ],
)
def test_embeddings_requests(name: str, url: str, secret_key: str) -> None:
    call = EmbeddingCall(
        base_url="https://provider.test/v1", model="emb", inputs=["a", "b"], api_key=secret_key
    )
    request = get_embeddings_adapter(name).build_embeddings_request(call)
    assert str(request.url) == url
    assert request.method == "POST"
    body = body_of(request)
    if name == "gemini":
        assert [r["content"]["parts"][0]["text"] for r in body["requests"]] == ["a", "b"]
        assert {r["model"] for r in body["requests"]} == {"models/emb"}
    else:
        assert body["input"] == ["a", "b"]


def test_unknown_wire_format_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        get_adapter("carrier-pigeon")
    assert caught.value.code == "unknown_wire_format"


def test_anthropic_has_no_embeddings() -> None:
    with pytest.raises(InvalidInput) as caught:
        get_embeddings_adapter("anthropic")
    assert caught.value.code == "embeddings_unsupported"


def test_adapters_are_singletons() -> None:
    assert get_adapter("openai") is get_adapter("openai")
    assert get_adapter("groq").name == "groq"


def test_invalid_tool_arguments_are_the_callers_fault() -> None:
    messages = [
        {
            "role": "assistant",
            "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{not json"}}],
        }
    ]
    call = ChatCall(base_url="https://a.test", model="m", messages=messages)
    with pytest.raises(InvalidInput) as caught:
        get_adapter("anthropic").build_request(call)
    assert caught.value.code == "invalid_tool_arguments"


def test_the_key_is_not_in_reprs(chat_call: ChatCall, secret_key: str) -> None:
    assert secret_key not in repr(chat_call)
    for name in ("openai", "anthropic", "gemini", "ollama"):
        assert secret_key not in repr(get_adapter(name).build_request(chat_call))


# -- round trips through httpx.MockTransport ------------------------------------------------

ANSWERS: dict[str, dict[str, Any]] = {
    "openai": {
        "choices": [{"message": {"content": "Sunny."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2},
    },
    "anthropic": {
        "content": [{"type": "text", "text": "Sunny."}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 12, "output_tokens": 2},
    },
    "gemini": {
        "candidates": [{"content": {"parts": [{"text": "Sunny."}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 2, "totalTokenCount": 14},
    },
    "ollama": {
        "message": {"role": "assistant", "content": "Sunny."},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 12,
        "eval_count": 2,
    },
}


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_round_trip_through_mock_transport(chat_call: ChatCall, name: str) -> None:
    seen: list[httpx.Request] = []

    def provider(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ANSWERS[name])

    adapter = get_adapter(name)
    with httpx.Client(transport=httpx.MockTransport(provider)) as client:
        response = send(client, adapter.build_request(chat_call), timeout=5.0)
    completion = adapter.parse_response(response)

    assert completion.text == "Sunny."
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 2)
    assert json.loads(seen[0].content) == body_of(adapter.build_request(chat_call))


def test_a_key_that_cannot_go_on_the_wire_is_refused_without_quoting_it() -> None:
    call = ChatCall(base_url="https://a.test", model="m", messages=[], api_key="sk-ключ-secret")
    with pytest.raises(InvalidProviderRequest) as caught:
        get_adapter("anthropic").build_request(call)
    assert "ключ" not in str(caught.value)
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("name", ["anthropic", "gemini", "ollama"])
def test_a_tool_call_without_a_name_is_invalid_input(name: str) -> None:
    messages = [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}]
    call = ChatCall(base_url="https://a.test", model="m", messages=messages)
    with pytest.raises(InvalidInput):
        get_adapter(name).build_request(call)
