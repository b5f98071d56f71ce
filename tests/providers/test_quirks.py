"""Provider quirks beyond the recorded fixtures: headers, statuses and shapes of one provider."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from app.errors import InvalidInput
from app.providers import ChatCall, ProviderError, UntranslatableRequest, get_adapter
from app.providers.headers import provider_headers


def response(status: int, body: Any) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), request=httpx.Request("POST", "https://p.test")
    )


def failure(name: str, resp: httpx.Response) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        get_adapter(name).parse_response(resp)
    return caught.value


def test_groq_498_flex_capacity_is_overloaded_not_unknown() -> None:
    body = {"error": {"message": "Flex tier capacity exceeded.", "type": "server_error"}}
    assert failure("groq", response(498, body)).kind == "overloaded"
    assert failure("openai", response(498, body)).kind != "overloaded"  # Groq's own status


def test_ollama_not_pulled_inside_a_stream_is_not_found() -> None:
    line = json.dumps({"error": 'model "qwen3" not found, try pulling it first'})
    with pytest.raises(ProviderError) as caught:
        get_adapter("ollama").parse_stream([line])
    assert caught.value.kind == "not_found"


def test_lmstudio_model_unloaded_as_bare_text_is_not_found() -> None:
    assert failure("lmstudio", response(404, {"error": "Model is unloaded."})).kind == "not_found"
    assert failure("vllm", response(400, {"error": "Model is unloaded."})).kind == "invalid_request"


def test_openrouter_names_the_upstream_provider() -> None:
    body = {
        "id": "gen-1",
        "provider": "Chutes",
        "choices": [{"message": {"content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
    assert get_adapter("openrouter").parse_response(response(200, body)).upstream_provider == (
        "Chutes"
    )


def test_openrouter_attribution_headers_go_on_its_requests_only_when_configured() -> None:
    assert provider_headers() == {}
    headers = provider_headers(
        openrouter_site_url="https://app.example", openrouter_app_name="Eval"
    )
    assert headers == {"openrouter": {"HTTP-Referer": "https://app.example", "X-Title": "Eval"}}
    call = ChatCall(
        base_url="https://openrouter.ai/api/v1",
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "Hi"}],
        extra_headers=headers["openrouter"],
    )
    request = get_adapter("openrouter").build_request(call)
    assert request.headers["http-referer"] == "https://app.example"
    assert request.headers["x-title"] == "Eval"


@pytest.mark.parametrize(
    ("url", "part"),
    [
        (
            "https://img.example/chart.png",
            {"mimeType": "image/png", "fileUri": "https://img.example/chart.png"},
        ),
        (
            "https://img.example/photo.jpg?size=2",
            {"mimeType": "image/jpeg", "fileUri": "https://img.example/photo.jpg?size=2"},
        ),
        ("https://img.example/blob", {"fileUri": "https://img.example/blob"}),
    ],
)
def test_gemini_linked_images_carry_the_type_their_url_names(
    url: str, part: dict[str, str]
) -> None:
    content = [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    call = ChatCall(
        base_url="https://g.test/v1beta", model="m", messages=[{"role": "user", "content": content}]
    )
    body = json.loads(get_adapter("gemini").build_request(call).content)
    assert body["contents"][0]["parts"][1] == {"fileData": part}


@pytest.mark.parametrize("name", ["anthropic", "gemini", "ollama"])
def test_a_call_the_format_cannot_express_is_both_invalid_input_and_an_invalid_request(
    name: str,
) -> None:
    content = [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]
    call = ChatCall(
        base_url="https://p.test", model="m", messages=[{"role": "user", "content": content}]
    )
    with pytest.raises(UntranslatableRequest) as caught:
        get_adapter(name).build_request(call)
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert isinstance(error, ProviderError)
    assert error.kind == "invalid_request"
    assert "input_audio" in error.message
