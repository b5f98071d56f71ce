"""Providers over the API: one provider's detail, adding endpoints, model discovery."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from app.db.tables import ProviderRow
from app.errors import InvalidInput
from app.registry.discovery import DiscoveryFailed, list_upstream_models
from app.simulator.config import SimModel, default_config
from app.simulator.control import with_provider
from tests.conftest import Simulator, wait_for_jobs


@pytest.fixture
def cleanup(engine: Engine) -> Iterator[dict[str, list[str]]]:
    """Providers and models a test adds, removed afterwards (a provider takes its models and
    keys with it)."""
    made: dict[str, list[str]] = {"providers": [], "models": []}
    yield made
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM models WHERE id = ANY(:ids)"), {"ids": made["models"]})
        conn.execute(
            text("DELETE FROM providers WHERE name = ANY(:names)"), {"names": made["providers"]}
        )


def new_provider(api: httpx.Client, cleanup: dict[str, list[str]], **body: Any) -> dict[str, Any]:
    name = f"local-{uuid.uuid4().hex[:8]}"
    cleanup["providers"].append(name)
    response = api.post("/v1/providers", json={"name": name, "display_name": "Local", **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_a_provider_shows_its_models_breaker_and_key_counts(api: httpx.Client) -> None:
    key = api.post(
        "/v1/providers/sim-anthropic/keys",
        json={"label": f"count-{uuid.uuid4().hex[:6]}", "secret": "sk-ant-0123456789abcdef"},
    ).json()
    try:
        api.post(f"/v1/providers/sim-anthropic/keys/{key['id']}/disable").raise_for_status()
        detail = api.get("/v1/providers/sim-anthropic").json()
        assert detail["wire_format"] == "anthropic"
        assert detail["enabled"] is True
        assert detail["breaker"]["state"] == "closed"
        assert {"sim-claude-haiku", "sim-claude-sonnet"} <= set(detail["models"])
        assert detail["keys"]["disabled"] >= 1
        assert "sk-ant" not in str(detail)
    finally:
        api.delete(f"/v1/providers/sim-anthropic/keys/{key['id']}")
    missing = api.get("/v1/providers/nowhere")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "provider_not_found")


def test_an_openai_compatible_endpoint_can_be_added(
    api: httpx.Client, stack: Any, cleanup: dict[str, list[str]]
) -> None:
    created = new_provider(
        api, cleanup, base_url=f"{stack.simulator_url}/sim-openai/v1/", rpm=60, tpm=10000
    )
    assert created["base_url"] == f"{stack.simulator_url}/sim-openai/v1"
    assert (created["wire_format"], created["source"], created["rpm"]) == ("openai", "api", 60)
    assert created["models"] == []
    assert created["name"] in {p["name"] for p in api.get("/v1/providers").json()["data"]}

    again = api.post(
        "/v1/providers",
        json={"name": created["name"], "display_name": "x", "base_url": "http://h/v1"},
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "provider_exists")
    for bad in (
        {"base_url": "ftp://files.example.com/v1"},
        {"base_url": "file:///etc/passwd"},
        {"base_url": "not a url"},
        {"base_url": "https://user:pw@example.com/v1"},
        {"base_url": "https://example.com/v1", "wire_format": "carrier-pigeon"},
        {"base_url": "https://example.com/v1", "name": "Has_Caps"},
        {"base_url": "https://example.com/v1", "rpm": 0},
    ):
        body = {"name": f"bad-{uuid.uuid4().hex[:6]}", "display_name": "Bad", **bad}
        response = api.post("/v1/providers", json=body)
        assert response.status_code == 400, (bad, response.text)


def test_discovery_registers_what_the_provider_lists_and_serves_it(
    api: httpx.Client,
    engine: Engine,
    simulator: Simulator,
    cleanup: dict[str, list[str]],
    workers: object,
) -> None:
    config = default_config()
    models = {**config.providers["sim-openai"].models, "sim-gpt-nano": SimModel(latency_ms=5)}
    simulator.configure(with_provider(config, "sim-openai", models=models))
    cleanup["models"].append("sim-openai/sim-gpt-nano")

    found = api.post("/v1/providers/sim-openai/discover")
    assert found.status_code == 200, found.text
    assert found.json()["added"] == ["sim-openai/sim-gpt-nano"]
    assert found.json()["known"] == [
        "sim-embed-large",
        "sim-embed-small",
        "sim-gpt-large",
        "sim-gpt-mini",
    ]
    model = api.get("/v1/models/sim-openai/sim-gpt-nano").json()
    assert (model["source"], model["capabilities"], model["context_window"]) == (
        "discovered",
        ["chat"],
        8192,
    )
    assert model["pricing"]["input_per_mtok"] == "0"

    again = api.post("/v1/providers/sim-openai/discover").json()
    assert again["added"] == []
    assert "sim-openai/sim-gpt-nano" in again["known"]

    job = api.post(
        "/v1/jobs",
        json={
            "model": "sim-openai/sim-gpt-nano",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}],
        },
    ).json()
    assert wait_for_jobs(engine, [job["id"]]) == {job["id"]: "succeeded"}, api.get(
        f"/v1/jobs/{job['id']}"
    ).text


def test_discovery_uses_the_providers_stored_key(
    api: httpx.Client, stack: Any, simulator: Simulator, cleanup: dict[str, list[str]]
) -> None:
    secret = "sk-discovery-key-0123456789"
    simulator.configure(with_provider(default_config(), "sim-openai", keys=[secret]))
    provider = new_provider(api, cleanup, base_url=f"{stack.simulator_url}/sim-openai/v1")
    name = provider["name"]

    refused = api.post(f"/v1/providers/{name}/discover")
    assert (refused.status_code, refused.json()["error"]["code"]) == (424, "discovery_failed")

    api.post(
        f"/v1/providers/{name}/keys", json={"label": "main", "secret": secret}
    ).raise_for_status()
    found = api.post(f"/v1/providers/{name}/discover")
    assert found.status_code == 200, found.text
    assert found.json()["added"] == [
        f"{name}/{model}"
        for model in ("sim-embed-large", "sim-embed-small", "sim-gpt-large", "sim-gpt-mini")
    ]
    assert api.get(f"/v1/providers/{name}").json()["models"] == found.json()["added"]
    assert secret not in found.text


def test_ollama_discovery_reads_api_tags(
    api: httpx.Client, simulator: Simulator, cleanup: dict[str, list[str]]
) -> None:
    config = default_config()
    models = {**config.providers["sim-ollama"].models, "qwen-tiny": SimModel()}
    simulator.configure(with_provider(config, "sim-ollama", models=models))
    cleanup["models"].append("sim-ollama/qwen-tiny")
    found = api.post("/v1/providers/sim-ollama/discover").json()
    assert (found["added"], found["known"]) == (
        ["sim-ollama/qwen-tiny"],
        ["sim-llama-small", "sim-nomic-embed", "sim-qwen-vl"],
    )


def provider_row(wire_format: str, base_url: str = "https://llm.example.com/v1") -> ProviderRow:
    return ProviderRow(name="example", wire_format=wire_format, base_url=base_url)


def test_discovery_over_a_mock_transport_sends_the_key_and_checks_the_shape() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "b"}, {"id": "a"}, {"id": "a"}]})
        return httpx.Response(200, json={"unexpected": True})

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        assert list_upstream_models(provider_row("vllm"), client, "sk-x") == ["a", "b"]
        assert seen[0].url == "https://llm.example.com/v1/models"
        assert seen[0].headers["authorization"] == "Bearer sk-x"
        with pytest.raises(DiscoveryFailed) as shape:
            list_upstream_models(provider_row("openai", "https://llm.example.com/v2"), client, None)
        assert shape.value.code == "discovery_failed"
        with pytest.raises(InvalidInput):
            list_upstream_models(provider_row("gemini"), client, None)
