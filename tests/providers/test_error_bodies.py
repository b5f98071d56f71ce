"""Failures beyond the recorded fixtures: garbage bodies, errors in 200s and mid-stream."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from app.providers import ProviderError, get_adapter

SECRET_KEY = "sk-errors-0123456789-SECRET"

CHAT_FORMATS = ["openai", "anthropic", "gemini", "ollama", "groq", "openrouter", "vllm", "lmstudio"]
OPENAI_COMPATIBLE = ["openai", "groq", "openrouter", "vllm", "lmstudio"]

HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def response(
    status: int, body: bytes | Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(
        status,
        headers=headers or {},
        content=content,
        request=httpx.Request(
            "POST", "https://provider.test/v1", headers={"authorization": f"Bearer {SECRET_KEY}"}
        ),
    )


def failure(name: str, resp: httpx.Response) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        get_adapter(name).parse_response(resp)
    return caught.value


def stream_failure(name: str, lines: list[str]) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        get_adapter(name).parse_stream(lines)
    return caught.value


# -- bodies that are not what the format promises --------------------------------------------


@pytest.mark.parametrize("name", CHAT_FORMATS)
@pytest.mark.parametrize(
    "body",
    [b'{"choices": [{"message": {"content": "Hel', b"{}", b"", b"[]", b'"ok"', HTML_502],
    ids=["truncated", "empty-object", "empty", "array", "string", "html"],
)
def test_malformed_200_bodies_are_server_failures(name: str, body: bytes) -> None:
    error = failure(name, response(200, body))
    assert error.kind == "server_error"
    assert error.message.startswith("malformed response body")


@pytest.mark.parametrize("name", CHAT_FORMATS)
def test_an_html_502_page_is_a_server_failure(name: str) -> None:
    error = failure(name, response(502, HTML_502, {"content-type": "text/html"}))
    assert error.kind == "server_error"
    assert error.status_code == 502
    assert "502 Bad Gateway" in error.message


@pytest.mark.parametrize("name", CHAT_FORMATS)
def test_a_non_json_429_is_still_a_rate_limit(name: str) -> None:
    error = failure(name, response(429, b"Too Many Requests", {"retry-after": "3"}))
    assert (error.kind, error.retry_after) == ("rate_limit", 3.0)


@pytest.mark.parametrize("name", CHAT_FORMATS)
def test_wrong_field_types_are_malformed_not_crashes(name: str) -> None:
    bodies: dict[str, Any] = {
        "anthropic": {"content": "not a list", "usage": {}},
        "gemini": {"candidates": [{"content": {"parts": "x"}, "finishReason": "STOP"}]},
        "ollama": {"message": {"content": 5}, "done": True},
    }
    body = bodies.get(name, {"choices": [{"message": {"content": 5}}], "usage": {}})
    assert failure(name, response(200, body)).kind == "server_error"


# -- errors inside 200 bodies ----------------------------------------------------------------


@pytest.mark.parametrize("name", OPENAI_COMPATIBLE)
@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            {"message": "This endpoint's maximum context length is 8192 tokens.", "code": 400},
            "context_length",
        ),
        ({"message": "Provider returned error", "code": 429}, "rate_limit"),
        ({"message": "Upstream timed out", "code": 502}, "server_error"),
        ({"message": "No auth credentials found", "code": 401}, "auth"),
        ({"message": "Something odd"}, "unknown"),
    ],
)
def test_an_error_body_with_status_200_is_classified_by_its_own_code(
    name: str, error: dict[str, Any], kind: str
) -> None:
    assert failure(name, response(200, {"error": error})).kind == kind


def test_openrouter_upstream_error_inside_metadata_raw_is_classified() -> None:
    raw = json.dumps({"error": {"message": "prompt is too long: 210000 tokens > 200000 maximum"}})
    body = {"error": {"message": "Provider returned error", "code": 400, "metadata": {"raw": raw}}}
    error = failure("openrouter", response(400, body))
    assert error.kind == "context_length"
    assert "prompt is too long" in error.message


def test_a_plain_openai_403_is_auth_not_moderation() -> None:
    body = {"error": {"message": "Country not supported", "code": "unsupported_country"}}
    assert failure("openai", response(403, body)).kind == "auth"


def test_gemini_errors_wrapped_in_a_one_element_array() -> None:
    body = [
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
                ],
            }
        }
    ]
    error = failure("gemini", response(429, body))
    assert (error.kind, error.retry_after, error.provider_code) == (
        "rate_limit",
        37.0,
        "RESOURCE_EXHAUSTED",
    )


def test_gemini_blocked_prompt_is_content_filtered() -> None:
    body = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
    }
    error = failure("gemini", response(200, body))
    assert error.kind == "content_filter"
    assert error.completion is not None
    assert error.completion.usage.prompt_tokens == 7


# -- retry hints ---------------------------------------------------------------------------


def test_retry_after_ms_is_read() -> None:
    error = failure(
        "openai", response(429, {"error": {"message": "x"}}, {"retry-after-ms": "1500"})
    )
    assert error.retry_after == 1.5


def test_retry_after_as_an_http_date_counts_from_the_response_date() -> None:
    headers = {
        "date": "Wed, 21 Oct 2026 07:28:00 GMT",
        "retry-after": "Wed, 21 Oct 2026 07:28:30 GMT",
    }
    error = failure("anthropic", response(503, {"error": {"message": "x"}}, headers))
    assert error.retry_after == 30.0


def test_body_retry_wording_is_only_a_fallback() -> None:
    body = {"error": {"message": "Please try again in 1m3.5s.", "code": "rate_limit_exceeded"}}
    assert failure("groq", response(429, body)).retry_after == pytest.approx(63.5)
    with_header = failure("groq", response(429, body, {"retry-after": "2"}))
    assert with_header.retry_after == 2.0


# -- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CHAT_FORMATS)
def test_an_echoed_key_never_reaches_the_message(name: str) -> None:
    body = {"error": {"message": f"Incorrect API key provided: {SECRET_KEY}"}}
    error = failure(name, response(401, body))
    assert error.kind == "auth"
    assert SECRET_KEY not in error.message
    assert SECRET_KEY not in repr(error)
    garbage = failure(name, response(200, f"<html>{SECRET_KEY}".encode()))
    assert SECRET_KEY not in garbage.message


# -- streams ---------------------------------------------------------------------------------


def sse(*payloads: Any, event: str | None = None) -> list[str]:
    lines: list[str] = []
    for payload in payloads:
        if event is not None:
            lines.append(f"event: {event}")
        lines += [f"data: {json.dumps(payload)}", ""]
    return lines


def openai_chunk(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


@pytest.mark.parametrize("name", OPENAI_COMPATIBLE)
def test_openai_error_mid_stream(name: str) -> None:
    lines = sse(
        openai_chunk("Hel"),
        {
            "error": {"code": 502, "message": "Upstream overloaded, try later"},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        },
    )
    error = stream_failure(name, lines)
    assert error.kind == "server_error"
    assert error.completion is not None
    assert error.completion.text == "Hel"


def test_anthropic_error_event_mid_stream() -> None:
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 3, "output_tokens": 1}}}
    lines = [
        *sse(start, event="message_start"),
        *sse(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            event="error",
        ),
    ]
    error = stream_failure("anthropic", lines)
    assert error.kind == "overloaded"


def test_gemini_error_mid_stream() -> None:
    first = {"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}
    broken = {
        "error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}
    }
    assert stream_failure("gemini", sse(first, broken)).kind == "overloaded"


def test_ollama_error_mid_stream() -> None:
    lines = [
        json.dumps({"message": {"role": "assistant", "content": "The"}, "done": False}),
        json.dumps({"error": "an error was encountered while running the model: unexpected EOF"}),
    ]
    error = stream_failure("ollama", lines)
    assert error.kind == "unknown"
    assert error.completion is not None
    assert error.completion.text == "The"


@pytest.mark.parametrize(
    ("name", "lines"),
    [
        ("openai", sse(openai_chunk("Hel"))),
        ("anthropic", sse({"type": "message_start", "message": {"usage": {}}})),
        ("gemini", sse({"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]})),
        ("ollama", [json.dumps({"message": {"content": "Hi"}, "done": False})]),
        ("openai", []),
    ],
    ids=["openai", "anthropic", "gemini", "ollama", "openai-empty"],
)
def test_a_stream_cut_short_is_a_server_failure(name: str, lines: list[str]) -> None:
    error = stream_failure(name, lines)
    assert error.kind == "server_error"
    assert "stream ended" in error.message


@pytest.mark.parametrize("name", ["openai", "anthropic", "gemini"])
def test_a_stream_event_that_is_not_json_is_malformed(name: str) -> None:
    error = stream_failure(name, ['data: {"choices": [', ""])
    assert error.message.startswith("malformed response body")


def test_openai_stream_tool_call_fragments_are_joined_once() -> None:
    def tool(fragment: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        delta = {"tool_calls": [fragment]}
        return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = sse(
        tool({"index": 0, "id": "call_9", "function": {"name": "f", "arguments": ""}}),
        tool({"index": 0, "function": {"arguments": '{"a":'}}),
        tool({"index": 0, "function": {"arguments": " 1}"}}),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 4}},
    )
    lines = [*chunks, "data: [DONE]", ""]
    completion = get_adapter("openai").parse_stream(lines)
    assert [(c.id, c.name, json.loads(c.arguments)) for c in completion.tool_calls] == [
        ("call_9", "f", {"a": 1})
    ]
    assert completion.text is None
    assert completion.usage.total_tokens == 9
