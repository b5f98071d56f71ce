"""The OpenAI-compatible flavours the simulator speaks: each one's quirks, on the wire, read
back by the gateway's own adapter for that format (so the two cannot drift apart)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from app.providers import ProviderError, get_adapter
from app.simulator.tokens import IMAGE_TOKENS, prompt_tokens
from tests.simulator.conftest import RunningSimulator

HI = [{"role": "user", "content": "Hi"}]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n0000").decode()
# provider, base path, model
FLAVOURS = {
    "groq": ("sim-groq", "/sim-groq/openai/v1", "sim-groq-llama"),
    "openrouter": ("sim-openrouter", "/sim-openrouter/api/v1", "sim/router-gpt"),
    "vllm": ("sim-vllm", "/sim-vllm/v1", "sim-vllm-qwen"),
    "lmstudio": ("sim-lmstudio", "/sim-lmstudio/v1", "sim-lmstudio-qwen"),
}


def chat(sim: RunningSimulator, fmt: str, **fields: Any) -> httpx.Response:
    _, base, model = FLAVOURS[fmt]
    return sim.post(f"{base}/chat/completions", {"model": model, "messages": HI, **fields})


def failure(fmt: str, response: httpx.Response) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        get_adapter(fmt).parse_response(response)
    return caught.value


def test_groq_streams_its_usage_in_x_groq_on_the_finish_chunk(sim: RunningSimulator) -> None:
    response = chat(sim, "groq", stream=True, stream_options={"include_usage": True})
    payloads = [p for p in sim.sse_data(response.text) if p != "[DONE]"]
    assert all("usage" not in p or p["usage"] is None for p in payloads)
    assert payloads[0]["x_groq"]["id"].startswith("req_")
    usage = payloads[-1]["x_groq"]["usage"]
    completion = get_adapter("groq").parse_stream(response.text.splitlines())
    assert completion.usage.prompt_tokens == usage["prompt_tokens"] == prompt_tokens(["Hi"])
    assert completion.usage.completion_tokens == usage["completion_tokens"] > 0


def test_groq_rate_limits_carry_its_headers_and_retry_after(sim: RunningSimulator) -> None:
    config = sim.fast_config()
    config["providers"]["sim-groq"]["rpm"] = 1
    sim.configure(config)
    first = chat(sim, "groq")
    assert get_adapter("groq").parse_response(first).rate_limits is not None
    limited = chat(sim, "groq")
    assert limited.status_code == 429
    assert "param" not in limited.json()["error"]
    assert limited.json()["error"]["type"] == "requests"
    error = failure("groq", limited)
    assert error.kind == "rate_limit"
    assert error.retry_after == pytest.approx(float(limited.headers["retry-after-ms"]) / 1000)


def test_groq_overloaded_is_its_498(sim: RunningSimulator) -> None:
    config = sim.fast_config()
    config["providers"]["sim-groq"]["models"]["sim-groq-llama"]["errors"] = {"overloaded": 1.0}
    sim.configure(config)
    response = chat(sim, "groq")
    assert response.status_code == 498
    assert failure("groq", response).kind == "overloaded"


def test_openrouter_streams_comments_and_names_the_upstream(sim: RunningSimulator) -> None:
    response = chat(sim, "openrouter", stream=True, stream_options={"include_usage": True})
    assert response.text.startswith(": OPENROUTER PROCESSING\n\n")
    payloads = [p for p in sim.sse_data(response.text) if p != "[DONE]"]
    assert {p["provider"] for p in payloads} == {"SimCloud"}
    assert all(p["id"].startswith("gen-") for p in payloads)
    completion = get_adapter("openrouter").parse_stream(response.text.splitlines())
    assert completion.upstream_provider == "SimCloud"
    assert completion.usage.prompt_tokens == prompt_tokens(["Hi"])
    whole = get_adapter("openrouter").parse_response(chat(sim, "openrouter"))
    assert whole.upstream_provider == "SimCloud"


def test_openrouter_fails_midway_with_its_documented_error_chunk(sim: RunningSimulator) -> None:
    config = sim.fast_config()
    models = config["providers"]["sim-openrouter"]["models"]
    models["sim/router-gpt"]["errors"] = {"stream_error": 1.0}
    sim.configure(config)
    response = chat(sim, "openrouter", stream=True)
    assert response.status_code == 200
    error_chunk = [p for p in sim.sse_data(response.text) if p != "[DONE]"][-1]
    assert error_chunk["choices"][0]["finish_reason"] == "error"
    with pytest.raises(ProviderError) as caught:
        get_adapter("openrouter").parse_stream(response.text.splitlines())
    assert caught.value.kind == "server_error"
    assert caught.value.completion is not None
    assert caught.value.completion.text


@pytest.mark.parametrize(
    ("fmt", "fault", "kind"),
    [
        ("openrouter", "rate_limit", "rate_limit"),
        ("openrouter", "server_error", "server_error"),
        ("vllm", "server_error", "server_error"),
        ("lmstudio", "server_error", "server_error"),
    ],
)
def test_injected_failures_come_in_each_flavours_shape(
    sim: RunningSimulator, fmt: str, fault: str, kind: str
) -> None:
    provider, _, model = FLAVOURS[fmt]
    config = sim.fast_config()
    config["providers"][provider]["models"][model]["errors"] = {fault: 1.0}
    sim.configure(config)
    response = chat(sim, fmt)
    body = response.json()
    if fmt == "openrouter":
        assert body["error"]["code"] == response.status_code
        assert body["error"]["metadata"]["provider_name"] == "SimCloud"
    elif fmt == "vllm":
        assert (body["object"], body["code"]) == ("error", response.status_code)
    else:
        assert isinstance(body["error"], str)
    assert failure(fmt, response).kind == kind


@pytest.mark.parametrize("fmt", ["vllm", "lmstudio", "openrouter", "groq"])
def test_context_and_model_errors_are_classified_from_each_flavours_wording(
    sim: RunningSimulator, fmt: str
) -> None:
    too_long = chat(sim, fmt, max_tokens=10_000_000)
    assert too_long.status_code == 400
    assert failure(fmt, too_long).kind == "context_length"
    _, base, _ = FLAVOURS[fmt]
    unknown = sim.post(f"{base}/chat/completions", {"model": "no-such-model", "messages": HI})
    assert failure(fmt, unknown).kind == "not_found"


def test_vllm_flat_errors_and_a_bad_key(sim: RunningSimulator) -> None:
    unknown = sim.post("/sim-vllm/v1/chat/completions", {"model": "nope", "messages": HI})
    assert unknown.json() == {
        "object": "error",
        "message": "The model `nope` does not exist.",
        "type": "NotFoundError",
        "param": None,
        "code": 404,
    }
    config = sim.fast_config()
    config["providers"]["sim-vllm"]["keys"] = ["token-abc"]
    sim.configure(config)
    rejected = chat(
        sim,
        "vllm",
    )
    assert (rejected.status_code, rejected.json()) == (401, {"error": "Unauthorized"})
    assert failure("vllm", rejected).kind == "auth"


@pytest.mark.parametrize(
    ("path", "body", "images"),
    [
        (
            "/sim-openai/v1/chat/completions",
            {
                "model": "sim-gpt-large",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Hi"},
                            {
                                "type": "image_url",
                                "image_url": {"url": f"data:image/png;base64,{PNG}"},
                            },
                            {
                                "type": "image_url",
                                "image_url": {"url": "https://img.example/a.png"},
                            },
                        ],
                    }
                ],
            },
            2,
        ),
        (
            "/sim-anthropic/v1/messages",
            {
                "model": "sim-claude-sonnet",
                "max_tokens": 50,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Hi"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": PNG,
                                },
                            },
                        ],
                    }
                ],
            },
            1,
        ),
        (
            "/sim-gemini/v1beta/models/sim-gemini-flash:generateContent",
            {
                "contents": [
                    {
                        "role": "user",
                        "parts": [
                            {"text": "Hi"},
                            {"inlineData": {"mimeType": "image/png", "data": PNG}},
                            {"fileData": {"fileUri": "https://img.example/a.png"}},
                        ],
                    }
                ]
            },
            2,
        ),
        (
            "/sim-ollama/api/chat",
            {
                "model": "sim-qwen-vl",
                "stream": False,
                "messages": [{"role": "user", "content": "Hi", "images": [PNG]}],
            },
            1,
        ),
    ],
    ids=["openai", "anthropic", "gemini", "ollama"],
)
def test_every_format_counts_the_images_it_was_given(
    sim: RunningSimulator, path: str, body: dict[str, Any], images: int
) -> None:
    response = sim.post(path, body)
    assert response.status_code == 200, response.text
    model = sim.stats()["providers"][path.split("/")[1]]
    assert model["prompt_tokens"] == prompt_tokens(["Hi"]) + images * IMAGE_TOKENS


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/sim-openai/v1/chat/completions",
            {
                "model": "sim-gpt-large",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:,x"}}],
                    }
                ],
            },
        ),
        (
            "/sim-anthropic/v1/messages",
            {
                "model": "sim-claude-sonnet",
                "max_tokens": 50,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/bmp",
                                    "data": PNG,
                                },
                            }
                        ],
                    }
                ],
            },
        ),
        (
            "/sim-ollama/api/chat",
            {
                "model": "sim-qwen-vl",
                "stream": False,
                "messages": [
                    {"role": "user", "content": "Hi", "images": [f"data:image/png;base64,{PNG}"]}
                ],
            },
        ),
    ],
    ids=["openai-not-an-image", "anthropic-bad-media-type", "ollama-data-url"],
)
def test_a_malformed_image_is_the_providers_400(
    sim: RunningSimulator, path: str, body: dict[str, Any]
) -> None:
    assert sim.post(path, body).status_code == 400
