"""Failures answer in each provider's own shape, status and wording — and never with a 500
the configuration did not ask for."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from tests.simulator.conftest import RunningSimulator

FORMATS = ("openai", "anthropic", "gemini", "ollama")
PROVIDERS = {
    "openai": "sim-openai",
    "anthropic": "sim-anthropic",
    "gemini": "sim-gemini",
    "ollama": "sim-ollama",
}
KEY_HEADERS = {
    "openai": lambda key: {"authorization": f"Bearer {key}"},
    "anthropic": lambda key: {"x-api-key": key},
    "gemini": lambda key: {"x-goog-api-key": key},
    "ollama": lambda key: {"authorization": f"Bearer {key}"},
}


def error_text(fmt: str, body: Any) -> str:
    """The human-readable message of an error body in ``fmt``'s shape (checks the shape)."""
    if fmt == "anthropic":
        assert body["type"] == "error"
        assert set(body["error"]) == {"type", "message"}
        return str(body["error"]["message"])
    if fmt == "ollama":
        assert isinstance(body["error"], str)
        return str(body["error"])
    if fmt == "openai":
        assert set(body["error"]) == {"message", "type", "param", "code"}
    else:
        assert set(body["error"]) >= {"code", "message", "status"}
    return str(body["error"]["message"])


def with_keys(sim: RunningSimulator, keys: list[str]) -> None:
    config = sim.fast_config()
    for provider in config["providers"].values():
        provider["keys"] = keys
    sim.configure(config)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_wrong_or_missing_key_is_refused(sim: RunningSimulator, fmt: str) -> None:
    with_keys(sim, ["sk-right-key-0001"])
    ok = sim.chat(fmt, headers=KEY_HEADERS[fmt]("sk-right-key-0001"))
    assert ok.status_code == 200
    wrong = sim.chat(fmt, headers=KEY_HEADERS[fmt]("sk-wrong-key-9999"))
    missing = sim.chat(fmt)
    if fmt == "gemini":  # a bad key is a 400 with reason API_KEY_INVALID; none is a 403
        assert wrong.status_code == 400
        assert wrong.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
        assert missing.status_code == 403
        assert missing.json()["error"]["status"] == "PERMISSION_DENIED"
    else:
        assert (wrong.status_code, missing.status_code) == (401, 401)
    assert "sk-wrong-key-9999" not in wrong.text  # echoed masked at most
    error_text(fmt, wrong.json())
    if fmt == "openai":
        assert wrong.json()["error"]["code"] == "invalid_api_key"
    if fmt == "anthropic":
        assert wrong.json()["error"]["type"] == "authentication_error"


def test_gemini_accepts_the_key_in_the_query(sim: RunningSimulator) -> None:
    with_keys(sim, ["g-key"])
    path = sim.chat_path("gemini")
    assert sim.post(path + "?key=g-key", sim.chat_body("gemini")).status_code == 200
    assert sim.post(path + "?key=nope", sim.chat_body("gemini")).status_code == 400


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_unknown_model_is_not_found(sim: RunningSimulator, fmt: str) -> None:
    if fmt == "gemini":
        path = "/sim-gemini/v1beta/models/no-such-model:generateContent"
        response = sim.post(path, sim.chat_body("gemini"))
    else:
        response = sim.chat(fmt, model="no-such-model")
    assert response.status_code == 404
    assert "no-such-model" in error_text(fmt, response.json())
    if fmt == "openai":
        assert response.json()["error"]["code"] == "model_not_found"


CONTEXT_WORDING = {
    "openai": "This model's maximum context length is 8000 tokens. However, you requested",
    "anthropic": "prompt is too long: ",
    "gemini": "exceeds the maximum number of tokens allowed (8000).",
    "ollama": "the input length exceeds the context length",
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_context_window_is_enforced_with_the_real_wording(sim: RunningSimulator, fmt: str) -> None:
    config = sim.fast_config()
    for provider in config["providers"].values():
        for model in provider["models"].values():
            model["context_window"] = 8000
            model["max_output_tokens"] = 1000
    sim.configure(config)
    long_text = "x" * 4 * 7000  # 7000 tokens + 3 + 4: fits only with < 993 output tokens
    if fmt == "gemini":
        fits = sim.chat(
            "gemini",
            contents=[{"parts": [{"text": long_text}]}],
            generationConfig={"maxOutputTokens": 900},
        )
    elif fmt == "ollama":
        fits = sim.chat(
            fmt, messages=[{"role": "user", "content": long_text}], options={"num_predict": 900}
        )
    else:
        fits = sim.chat(fmt, messages=[{"role": "user", "content": long_text}], max_tokens=900)
    assert fits.status_code == 200, fits.text
    huge = "x" * 4 * 9000
    if fmt == "gemini":
        refused = sim.chat("gemini", contents=[{"parts": [{"text": huge}]}])
    else:
        refused = sim.chat(fmt, messages=[{"role": "user", "content": huge}])
    assert refused.status_code == 400
    message = error_text(fmt, refused.json())
    assert CONTEXT_WORDING[fmt] in message
    if fmt == "openai":
        assert refused.json()["error"]["code"] == "context_length_exceeded"
        assert "(9007 in the messages, 1000 in the completion)" in message
    if fmt == "anthropic":
        assert message == "prompt is too long: 9007 tokens > 8000 maximum"


def test_output_reservation_counts_against_the_window(sim: RunningSimulator) -> None:
    config = sim.fast_config()
    config["providers"]["sim-anthropic"]["models"]["sim-claude-haiku"]["context_window"] = 1000
    sim.configure(config)
    response = sim.chat("anthropic", max_tokens=995)  # 10 prompt tokens + 995 > 1000
    assert response.status_code == 400
    assert error_text("anthropic", response.json()) == (
        "input length and `max_tokens` exceed context limit: 10 + 995 > 1000, "
        "decrease input length or `max_tokens` and try again"
    )


BAD_BODIES: list[bytes] = [
    b"",
    b"not json",
    b"{",
    b"[]",
    b"null",
    b"42",
    b'"text"',
    b"{}",
    b'{"model": 5}',
    b'{"model": "sim-gpt-mini"}',
    b'{"model": "sim-gpt-mini", "messages": "hello"}',
    b'{"model": "sim-gpt-mini", "messages": []}',
    b'{"model": "sim-gpt-mini", "messages": [1, 2]}',
    b'{"model": "sim-gpt-mini", "messages": [{"role": "user", "content": 7}]}',
    b'{"model": "sim-gpt-mini", "messages": [{"role": "user", "content": [1]}], "stream": 1}',
    b'{"model": "sim-gpt-mini", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}',
    b'{"model": "sim-gpt-mini", "messages": [{"role": "user"}], "max_tokens": "9"}',
    b'{"model": "sim-gpt-mini", "messages": [{"role": "user"}], "max_tokens": true}',
    b'{"model": "sim-gpt-mini", "messages": [{"role": "user"}], "max_tokens": 1e400}',
    b'{"model": "sim-gpt-mini", "messages": [{"role": "user"}], "options": [1]}',
    b'{"contents": "x"}',
    b'{"contents": [{"parts": "x"}]}',
    b'{"contents": [{"parts": [{"text": "x"}]}], "generationConfig": []}',
    b'{"contents": [{"parts": [{"text": "x"}]}], "systemInstruction": 3}',
    b'{"model": "sim-llama-small", "messages": [], "options": {"num_predict": "x"}}',
    b'{"requests": [1]}',
    b'{"input": [[1, "a"]]}',
    b'{"model": "sim-gpt-mini", "input": ""}',
    b'{"model": "sim-gpt-mini", "input": "a", "dimensions": 100000}',
    b'{"model": "sim-gpt-mini", "input": "a", "encoding_format": "hex"}',
    b"\xff\xfe\x00garbage",
    b"[" * 5000,
    json.dumps(
        {"model": "sim-gpt-mini", "messages": [{"role": "user", "content": "\ud800"}]}
    ).encode(),
]
ENDPOINTS = [
    "/sim-openai/v1/chat/completions",
    "/sim-openai/v1/embeddings",
    "/sim-anthropic/v1/messages",
    "/sim-gemini/v1beta/models/sim-gemini-flash:generateContent",
    "/sim-gemini/v1beta/models/sim-gemini-flash:streamGenerateContent?alt=sse",
    "/sim-gemini/v1beta/models/sim-gemini-flash:embedContent",
    "/sim-gemini/v1beta/models/sim-gemini-flash:batchEmbedContents",
    "/sim-ollama/api/chat",
    "/sim-ollama/api/embed",
]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_bad_bodies_get_the_formats_400_never_a_500(sim: RunningSimulator, endpoint: str) -> None:
    for body in BAD_BODIES:
        response = sim.http.post(endpoint, content=body)
        assert response.status_code < 500, (body, response.text)
        if response.status_code != 200:
            assert response.status_code in (400, 404), (body, response.text)
            assert "error" in response.json()
    assert sim.stats()["providers"].keys() <= set(PROVIDERS.values())


def test_unknown_provider_and_unknown_route_are_404(sim: RunningSimulator) -> None:
    assert sim.http.post("/nobody/v1/chat/completions", json={}).status_code == 404
    assert sim.http.get("/").status_code == 404
    for path in ("/sim-openai/v1/nope", "/sim-anthropic/v1/embeddings", "/sim-gemini/v1beta/x"):
        response = sim.http.post(path, json={})
        assert response.status_code == 404
        assert "error" in response.json()
    assert sim.http.get("/sim-openai/v1/chat/completions").status_code == 404
    assert sim.http.get("/_nope").status_code == 404


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_down_provider_answers_503(sim: RunningSimulator, fmt: str) -> None:
    sim.configure(sim.fast_config(**{PROVIDERS[fmt]: {"down": True}}))
    response = sim.chat(fmt)
    assert response.status_code == 503
    error_text(fmt, response.json())


INJECTED_STATUS = {
    "server_error": {"openai": 500, "anthropic": 500, "gemini": 500, "ollama": 500},
    "unavailable": {"openai": 503, "anthropic": 503, "gemini": 503, "ollama": 503},
    "overloaded": {"openai": 503, "anthropic": 529, "gemini": 503, "ollama": 503},
    "rate_limit": {"openai": 429, "anthropic": 429, "gemini": 429, "ollama": 429},
}


def inject(sim: RunningSimulator, fmt: str, **errors: float) -> None:
    config = sim.fast_config()
    for model in config["providers"][PROVIDERS[fmt]]["models"].values():
        model["errors"] = errors
    sim.configure(config)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", INJECTED_STATUS)
def test_injected_errors(sim: RunningSimulator, fmt: str, kind: str) -> None:
    inject(sim, fmt, **{kind: 1.0})
    response = sim.chat(fmt)
    assert response.status_code == INJECTED_STATUS[kind][fmt]
    message = error_text(fmt, response.json())
    if kind == "overloaded":
        assert (
            "overloaded" in message.lower()
            or response.json()["error"]["type"] == "overloaded_error"
        )
    if kind == "rate_limit":
        assert response.headers["retry-after"] == "1"
    stats = sim.stats()["providers"][PROVIDERS[fmt]]
    assert stats["injected"] == {kind: 1}
    assert stats["rate_limited"] == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_malformed_bodies_are_not_json(sim: RunningSimulator, fmt: str) -> None:
    inject(sim, fmt, malformed=1.0)
    response = sim.chat(fmt)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    if fmt == "gemini":
        path = sim.chat_path("gemini").replace("generateContent", "streamGenerateContent?alt=sse")
        streamed = sim.post(path, sim.chat_body("gemini"))
    else:
        streamed = sim.chat(fmt, stream=True)
    assert streamed.status_code == 200
    assert "[DONE]" not in streamed.text
    last = streamed.text.strip().splitlines()[-1].removeprefix("data: ")
    with pytest.raises(json.JSONDecodeError):
        json.loads(last)
    stats = sim.stats()["providers"][PROVIDERS[fmt]]
    assert stats["injected"] == {"malformed": 2}
    assert stats["completion_tokens"] == 0  # nothing well-formed was delivered


def test_content_filter_shapes(sim: RunningSimulator) -> None:
    for fmt in FORMATS:
        inject(sim, fmt, content_filter=1.0)
        body = sim.chat(fmt).json()
        if fmt == "openai":
            choice = body["choices"][0]
            assert (choice["finish_reason"], choice["message"]["content"]) == (
                "content_filter",
                None,
            )
        elif fmt == "anthropic":
            assert (body["stop_reason"], body["content"]) == ("refusal", [])
        elif fmt == "gemini":
            candidate = body["candidates"][0]
            assert candidate["finishReason"] == "SAFETY"
            assert "content" not in candidate
        else:  # Ollama has no content filter: nothing is injected
            assert body["done_reason"] == "stop"
            assert sim.stats()["providers"]["sim-ollama"]["injected"] == {}
    inject(sim, "anthropic", content_filter=1.0)
    stream = sim.chat("anthropic", stream=True)
    data = sim.sse_data(stream.text)
    assert data[-2]["delta"]["stop_reason"] == "refusal"
    assert not [d for d in data if d["type"] == "content_block_delta"]


def test_timeout_holds_for_hang_s_then_answers_504(sim: RunningSimulator) -> None:
    inject(sim, "openai", timeout=1.0, hang_s=0.3)
    started = time.monotonic()
    response = sim.chat("openai")
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 504
    assert sim.stats()["providers"]["sim-openai"]["injected"] == {"timeout": 1}


def test_a_client_timeout_fires_first_and_frees_the_request(sim: RunningSimulator) -> None:
    inject(sim, "anthropic", timeout=1.0, hang_s=30)
    with pytest.raises(httpx.ReadTimeout):
        sim.http.post(sim.chat_path("anthropic"), json=sim.chat_body("anthropic"), timeout=0.2)
    deadline = time.monotonic() + 5
    while sim.stats()["providers"]["sim-anthropic"]["in_flight"]:
        assert time.monotonic() < deadline, "the held request was not released"
        time.sleep(0.02)
    assert sim.stats()["providers"]["sim-anthropic"]["responses"] == {"499": 1}


def test_injections_are_reproducible_from_the_seed(sim: RunningSimulator) -> None:
    def run() -> list[int]:
        inject(sim, "openai", server_error=0.3, overloaded=0.3)
        return [sim.chat("openai").status_code for _ in range(40)]

    first = run()
    assert set(first) == {200, 500, 503}
    assert run() == first
