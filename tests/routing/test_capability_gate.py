"""Capabilities decide where a job may go: named models, fallback lists, batches, policies.

A request with tools only runs on ``tools`` models, one with images on ``vision`` models,
one asking for a JSON ``response_format`` on ``json_mode`` models, and an image given by URL
never goes to a provider whose API takes images only inline (Ollama). A named model that
cannot serve the request is a 400 naming the model and what it lacks, and nothing is
written; a routing policy skips such models and says so in the job's ``routing``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import count_rows

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
PNG_URL = "data:image/png;base64,iVBORw0KGgo="


def looking_at(url: str) -> list[dict[str, Any]]:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    return [{"role": "user", "content": content}]


def refused(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.mark.parametrize(
    ("extra", "model", "capability"),
    [
        ({"prompt": "Hi", "tools": [TOOL]}, "sim-llama-small", "tools"),
        ({"messages": looking_at(PNG_URL)}, "sim-gpt-mini", "vision"),
        (
            {"prompt": "Hi", "response_format": {"type": "json_object"}},
            "sim-claude-haiku",
            "json_mode",
        ),
    ],
    ids=["tools", "vision", "json_mode"],
)
def test_a_named_model_without_the_capability_is_refused_naming_both(
    api: httpx.Client, engine: Engine, extra: dict[str, Any], model: str, capability: str
) -> None:
    before = count_rows(engine, "jobs")
    error = refused(api.post("/v1/jobs", json={"model": model, **extra}))
    assert (error["code"], error["param"]) == ("unsupported_capability", "model")
    assert repr(model) in error["message"]
    assert f"`{capability}`" in error["message"]
    assert count_rows(engine, "jobs") == before


def test_every_fallback_must_serve_the_request_too(api: httpx.Client, engine: Engine) -> None:
    before = count_rows(engine, "jobs")
    chain = ["sim-gpt-mini", "sim-llama-small"]
    error = refused(api.post("/v1/jobs", json={"model": chain, "prompt": "Hi", "tools": [TOOL]}))
    assert (error["code"], error["param"]) == ("unsupported_capability", "model[1]")
    assert "'sim-llama-small'" in error["message"]
    assert count_rows(engine, "jobs") == before
    capable = api.post("/v1/jobs", json={"model": chain[:1], "prompt": "Hi", "tools": [TOOL]})
    assert capable.status_code == 202, capable.text


def test_ollama_takes_images_inline_only(api: httpx.Client) -> None:
    linked = refused(
        api.post(
            "/v1/jobs",
            json={"model": "sim-qwen-vl", "messages": looking_at("https://img.example/a.png")},
        )
    )
    assert linked["code"] == "unsupported_capability"
    assert "data: URLs" in linked["message"]
    inline = api.post("/v1/jobs", json={"model": "sim-qwen-vl", "messages": looking_at(PNG_URL)})
    assert inline.status_code == 202, inline.text


def test_the_openai_compatible_route_refuses_in_openais_shape(api: httpx.Client) -> None:
    body = {"model": "sim-llama-small", "messages": [{"role": "user", "content": "Hi"}]}
    response = api.post("/v1/chat/completions", json={**body, "tools": [TOOL]})
    error = refused(response)
    assert error["code"] == "unsupported_capability"
    assert error["param"] == "model"
    assert "`tools`" in error["message"]


def test_a_batch_line_that_no_model_of_it_can_serve_is_named(
    api: httpx.Client, engine: Engine
) -> None:
    before = count_rows(engine, "jobs")
    requests = [
        {"custom_id": "ok", "model": "sim-gpt-mini", "prompt": "Hi", "tools": [TOOL]},
        {"custom_id": "plain", "model": "sim-llama-small", "prompt": "Hi"},
        {"custom_id": "bad", "model": "sim-llama-small", "prompt": "Hi", "tools": [TOOL]},
    ]
    error = refused(api.post("/v1/batches", json={"requests": requests}))
    assert (error["code"], error["param"]) == ("unsupported_capability", "requests[2].model")
    assert "`tools`" in error["message"]
    as_lines = b"".join(json.dumps(request).encode() + b"\n" for request in requests)
    headers = {"content-type": "application/x-ndjson"}
    error = refused(api.post("/v1/batches", content=as_lines, headers=headers))
    assert (error["code"], error["line"]) == ("unsupported_capability", 3)
    assert error["message"].startswith("line 3: ")
    assert count_rows(engine, "jobs") == before


@pytest.fixture
def policy(api: httpx.Client) -> Iterator[str]:
    """A policy whose one rule lists a model without tools before one with them."""
    name = f"cap-{uuid.uuid4().hex[:8]}"
    rule = {"route": {"models": ["sim-llama-small", "sim-gpt-mini"]}}
    created = api.post("/v1/policies", json={"name": name, "rules": [rule]})
    assert created.status_code == 201, created.text
    yield name
    api.delete(f"/v1/policies/{name}")


def test_a_policy_skips_the_models_that_cannot_serve_and_says_why(
    api: httpx.Client, policy: str
) -> None:
    plain = api.post("/v1/jobs", json={"policy": policy, "prompt": "Hi"})
    assert plain.status_code == 202, plain.text
    assert api.get(f"/v1/jobs/{plain.json()['id']}").json()["model"] == [
        "sim-llama-small",
        "sim-gpt-mini",
    ]
    with_tools = api.post("/v1/jobs", json={"policy": policy, "prompt": "Hi", "tools": [TOOL]})
    assert with_tools.status_code == 202, with_tools.text
    job = api.get(f"/v1/jobs/{with_tools.json()['id']}").json()
    assert job["model"] == ["sim-gpt-mini"]
    (skipped,) = job["routing"]["skipped"]
    assert skipped["model"] == "sim-llama-small"
    assert "`tools`" in skipped["reason"]
    image = api.post("/v1/jobs", json={"policy": policy, "messages": looking_at(PNG_URL)})
    error = refused(image)
    assert error["code"] == "no_model_available"
    assert "`vision`" in error["message"]


def test_a_strategy_never_sends_a_linked_image_to_an_inline_only_provider(
    api: httpx.Client,
) -> None:
    body = {
        "strategy": "cost",
        "messages": looking_at("https://img.example/a.png"),
        "route": {"prefer_models": ["sim-qwen-vl"]},
    }
    chosen = api.post("/v1/route", json=body)
    assert chosen.status_code == 200, chosen.text
    assert "sim-qwen-vl" not in chosen.json()["chain"]
    inline = api.post("/v1/route", json={**body, "messages": looking_at(PNG_URL)}).json()
    assert inline["model"] == "sim-qwen-vl"
