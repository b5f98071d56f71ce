"""Successful answers have each provider's recorded shape, streamed and not."""

from __future__ import annotations

import base64
import json
import math
from typing import TYPE_CHECKING, Any

import pytest

from app.simulator.tokens import prompt_tokens

if TYPE_CHECKING:
    from tests.simulator.conftest import RunningSimulator

FORMATS = ("openai", "anthropic", "gemini", "ollama")

HELLO_PROMPT_TOKENS = prompt_tokens(["Hello there"])  # 3 + 4 + ceil(11 / 4) = 10


def assert_shape(
    ours: Any, theirs: Any, path: str = "$", ignore: frozenset[str] = frozenset()
) -> None:
    """Every key of the recorded payload is in ours, with the same JSON type (null matches any)."""
    if theirs is None or ours is None:
        return
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), path
        for key, value in theirs.items():
            if key in ignore:
                continue
            assert key in ours, f"{path}.{key} missing"
            assert_shape(ours[key], value, f"{path}.{key}", ignore)
    elif isinstance(theirs, list):
        assert isinstance(ours, list), path
        if theirs and ours:
            assert_shape(ours[0], theirs[0], f"{path}[0]", ignore)
    elif isinstance(theirs, bool) or isinstance(ours, bool):
        assert type(ours) is type(theirs), path
    elif isinstance(theirs, (int, float)):
        assert isinstance(ours, (int, float)), path
    else:
        assert isinstance(ours, type(theirs)), path


def test_openai_chat_has_the_recorded_shape(sim: RunningSimulator) -> None:
    response = sim.chat("openai")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert_shape(body, sim.wire_fixture("openai_chat_ok")["body"])
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"
    text = choice["message"]["content"]
    usage = body["usage"]
    assert usage["prompt_tokens"] == HELLO_PROMPT_TOKENS
    assert 8 <= usage["completion_tokens"] <= 64
    assert len(text.split()) == usage["completion_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert body["model"] == "sim-gpt-mini"
    assert body["id"].startswith("chatcmpl-")


def test_same_prompt_same_completion(sim: RunningSimulator) -> None:
    first = sim.chat("openai").json()["choices"][0]["message"]["content"]
    assert sim.chat("openai").json()["choices"][0]["message"]["content"] == first


def test_max_tokens_caps_the_completion_with_finish_length(sim: RunningSimulator) -> None:
    body = sim.chat("openai", max_tokens=3).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3
    anthropic = sim.chat("anthropic", max_tokens=2).json()
    assert (anthropic["stop_reason"], anthropic["usage"]["output_tokens"]) == ("max_tokens", 2)
    gemini = sim.chat("gemini", generationConfig={"maxOutputTokens": 2}).json()
    assert gemini["candidates"][0]["finishReason"] == "MAX_TOKENS"
    ollama = sim.chat("ollama", options={"num_predict": 2}).json()
    assert (ollama["done_reason"], ollama["eval_count"]) == ("length", 2)


def test_prompt_tokens_follow_the_documented_formula(sim: RunningSimulator) -> None:
    messages = [
        {"role": "system", "content": "be brief"},  # 8 bytes -> 2
        {
            "role": "user",
            "content": [{"type": "text", "text": "héllo"}, {"type": "text", "text": "!"}],
        },
    ]  # "héllo!" is 7 bytes -> 2
    body = sim.chat("openai", messages=messages).json()
    assert body["usage"]["prompt_tokens"] == 3 + (4 + 2) + (4 + 2)
    # Anthropic's separate system prompt counts as a message too.
    anthropic = sim.chat("anthropic", system="be brief").json()
    assert anthropic["usage"]["input_tokens"] == 3 + (4 + 2) + (4 + math.ceil(11 / 4))


def test_openai_stream_with_usage(sim: RunningSimulator) -> None:
    response = sim.chat("openai", stream=True, stream_options={"include_usage": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = sim.sse_data(response.text)
    assert chunks[-1] == "[DONE]"
    recorded = sim.sse_data("\n".join(sim.wire_fixture("openai_stream_ok")["body"]))
    assert_shape(chunks[0], recorded[0])
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-2])
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"
    usage_chunk = chunks[-2]
    assert usage_chunk["choices"] == []
    assert_shape(usage_chunk, recorded[-2])
    assert usage_chunk["usage"]["completion_tokens"] == len(text.split())
    assert text == sim.chat("openai").json()["choices"][0]["message"]["content"]


def test_openai_stream_without_usage_sends_none(sim: RunningSimulator) -> None:
    chunks = sim.sse_data(sim.chat("openai", stream=True).text)
    assert chunks[-1] == "[DONE]"
    assert all("usage" not in chunk for chunk in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_anthropic_message_has_the_recorded_shape(sim: RunningSimulator) -> None:
    response = sim.chat("anthropic")
    assert response.status_code == 200
    assert response.headers["request-id"].startswith("req_")
    body = response.json()
    assert_shape(body, sim.wire_fixture("anthropic_chat_ok")["body"])
    assert body["type"] == "message"
    assert body["stop_reason"] == "end_turn"
    assert body["usage"]["input_tokens"] == HELLO_PROMPT_TOKENS
    assert body["usage"]["output_tokens"] == len(body["content"][0]["text"].split())


def test_anthropic_stream_events(sim: RunningSimulator) -> None:
    response = sim.chat("anthropic", stream=True)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sim.sse_events(response.text)
    assert events[:3] == ["message_start", "content_block_start", "ping"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(events[3:-3]) == {"content_block_delta"}
    data = sim.sse_data(response.text)
    recorded = sim.sse_data("\n".join(sim.wire_fixture("anthropic_stream_ok")["body"]))
    assert_shape(data[0], recorded[0], ignore=frozenset({"inference_geo"}))
    assert_shape(data[-2], recorded[-2])
    text = "".join(d["delta"]["text"] for d in data if d["type"] == "content_block_delta")
    assert data[-2]["usage"]["output_tokens"] == len(text.split())
    assert data[-2]["delta"]["stop_reason"] == "end_turn"


def test_gemini_generate_content_has_the_recorded_shape(sim: RunningSimulator) -> None:
    body = sim.chat("gemini", systemInstruction={"parts": [{"text": "be brief"}]}).json()
    assert_shape(
        body, sim.wire_fixture("gemini_chat_ok")["body"], ignore=frozenset({"avgLogprobs"})
    )
    candidate = body["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    usage = body["usageMetadata"]
    assert usage["promptTokenCount"] == HELLO_PROMPT_TOKENS + 4 + 2
    assert usage["candidatesTokenCount"] == len(candidate["content"]["parts"][0]["text"].split())
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]


def test_gemini_streams_sse_or_a_json_array(sim: RunningSimulator) -> None:
    path = "/sim-gemini/v1beta/models/sim-gemini-flash:streamGenerateContent"
    body = sim.chat_body("gemini")
    sse = sim.post(path + "?alt=sse", body)
    assert sse.headers["content-type"].startswith("text/event-stream")
    chunks = sim.sse_data(sse.text)
    assert "[DONE]" not in chunks
    recorded = json.loads(sim.wire_fixture("gemini_stream_ok")["body"][0][6:])
    assert_shape(chunks[0], recorded, ignore=frozenset({"thoughtsTokenCount"}))
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == len(text.split())
    array = sim.post(path, body)
    assert array.headers["content-type"] == "application/json"
    strip = lambda chunk: {k: v for k, v in chunk.items() if k != "responseId"}  # noqa: E731
    assert [strip(c) for c in array.json()] == [strip(c) for c in chunks]


def test_ollama_chat_and_ndjson_stream(sim: RunningSimulator) -> None:
    body = sim.chat("ollama").json()
    assert_shape(body, sim.wire_fixture("ollama_chat_ok")["body"])
    assert body["done"] is True
    assert body["done_reason"] == "stop"
    assert body["prompt_eval_count"] == HELLO_PROMPT_TOKENS
    assert body["eval_count"] == len(body["message"]["content"].split())
    # Ollama streams unless "stream": false.
    streamed = sim.post(sim.chat_path("ollama"), {"model": "sim-llama-small", "messages": []})
    assert streamed.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in streamed.text.splitlines()]
    recorded = [json.loads(line) for line in sim.wire_fixture("ollama_stream_ok")["body"]]
    assert_shape(lines[0], recorded[0])
    assert_shape(lines[-1], recorded[-1])
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert lines[-1]["eval_count"] == len(lines) - 1


@pytest.mark.parametrize("fmt", ["openai", "gemini", "ollama"])
def test_embeddings(sim: RunningSimulator, fmt: str) -> None:
    texts = ["first text", "second"]
    if fmt == "openai":
        body = sim.post(
            "/sim-openai/v1/embeddings", {"model": "sim-gpt-mini", "input": texts, "dimensions": 16}
        ).json()
        assert_shape(body, sim.wire_fixture("openai_embeddings_ok")["body"])
        vectors = [item["embedding"] for item in body["data"]]
        assert body["usage"] == {"prompt_tokens": 3 + 2, "total_tokens": 5}
    elif fmt == "gemini":
        requests = [
            {"content": {"parts": [{"text": t}]}, "outputDimensionality": 16} for t in texts
        ]
        path = "/sim-gemini/v1beta/models/sim-gemini-flash:batchEmbedContents"
        body = sim.post(path, {"requests": requests}).json()
        assert_shape(body, sim.wire_fixture("gemini_embeddings_ok")["body"])
        vectors = [item["values"] for item in body["embeddings"]]
        single = sim.post(path.replace("batchEmbedContents", "embedContent"), requests[0]).json()
        assert single["embedding"]["values"] == vectors[0]
    else:
        body = sim.post(
            "/sim-ollama/api/embed", {"model": "sim-llama-small", "input": texts, "dimensions": 16}
        ).json()
        assert_shape(body, sim.wire_fixture("ollama_embeddings_ok")["body"])
        vectors = body["embeddings"]
        assert body["prompt_eval_count"] == 5
    assert [len(v) for v in vectors] == [16, 16]
    assert math.isclose(sum(x * x for x in vectors[0]), 1.0, rel_tol=1e-5)
    assert vectors[0] != vectors[1]


def test_openai_embeddings_base64(sim: RunningSimulator) -> None:
    request = {"model": "sim-gpt-mini", "input": "abc", "dimensions": 4}
    floats = sim.post("/sim-openai/v1/embeddings", request).json()["data"][0]["embedding"]
    request["encoding_format"] = "base64"
    encoded = sim.post("/sim-openai/v1/embeddings", request).json()["data"][0]["embedding"]
    assert len(base64.b64decode(encoded)) == 4 * 4
    assert isinstance(floats, list)


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/sim-openai/v1/models", lambda b: [m["id"] for m in b["data"]]),
        ("/sim-anthropic/v1/models", lambda b: [m["id"] for m in b["data"]]),
        ("/sim-gemini/v1beta/models", lambda b: [m["name"] for m in b["models"]]),
        ("/sim-ollama/api/tags", lambda b: [m["name"] for m in b["models"]]),
    ],
)
def test_model_listings(sim: RunningSimulator, path: str, names: Any) -> None:
    response = sim.http.get(path)
    assert response.status_code == 200
    listed = names(response.json())
    assert listed
    assert all(isinstance(name, str) for name in listed)


@pytest.mark.parametrize("fmt", FORMATS)
def test_default_model_serves_unknown_names(sim: RunningSimulator, fmt: str) -> None:
    config = sim.fast_config()
    for spec in config["providers"].values():
        spec["default_model"] = {"context_window": 5000}
    sim.configure(config)
    if fmt == "gemini":
        path = "/sim-gemini/v1beta/models/anything-else:generateContent"
        assert sim.post(path, sim.chat_body("gemini")).status_code == 200
    else:
        assert sim.chat(fmt, model="anything-else").status_code == 200
