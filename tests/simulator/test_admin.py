"""The admin endpoints tests and benchmarks drive a running simulator through."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import pytest

from app.simulator import default_config, key_fingerprint

if TYPE_CHECKING:
    from tests.simulator.conftest import RunningSimulator


def test_health(sim: RunningSimulator) -> None:
    response = sim.http.get("/_health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_stats_count_requests_responses_tokens_models_and_keys(sim: RunningSimulator) -> None:
    sim.configure(sim.fast_config(**{"sim-openai": {"keys": ["sk-test-1234", "sk-other"]}}))
    key = {"authorization": "Bearer sk-test-1234"}
    ok = sim.chat("openai", headers=key).json()
    sim.chat("openai", headers=key, model="gpt-unknown")
    sim.chat("openai", headers={"authorization": "Bearer sk-intruder"})
    stats = sim.stats()
    assert isinstance(stats["started_at"], float)
    openai = stats["providers"]["sim-openai"]
    assert openai["requests"] == 3
    assert openai["responses"] == {"200": 1, "404": 1, "401": 1}
    assert openai["prompt_tokens"] == ok["usage"]["prompt_tokens"]
    assert openai["completion_tokens"] == ok["usage"]["completion_tokens"]
    assert (openai["in_flight"], openai["max_in_flight"]) == (0, 1)
    assert openai["by_model"]["sim-gpt-mini"]["responses"] == {"200": 1}
    assert openai["by_model"]["gpt-unknown"]["responses"] == {"404": 1}
    assert set(openai["by_key"]) == {
        key_fingerprint("sk-test-1234"),
        key_fingerprint("sk-intruder"),
    }
    assert openai["by_key"][key_fingerprint("sk-test-1234")]["requests"] == 2
    text = json.dumps(stats)
    assert "sk-test-1234" not in text
    assert "1234" not in text.replace(str(stats["started_at"]), "")
    assert "sk-intruder" not in text


def test_stats_track_concurrency(sim: RunningSimulator) -> None:
    config = sim.fast_config()
    config["providers"]["sim-ollama"]["models"]["sim-llama-small"]["latency_ms"] = 200
    sim.configure(config)
    threads = [threading.Thread(target=lambda: sim.chat("ollama")) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ollama = sim.stats()["providers"]["sim-ollama"]
    assert ollama["max_in_flight"] == 5
    assert ollama["in_flight"] == 0
    assert ollama["responses"] == {"200": 5}


def test_reset_zeroes_stats_and_buckets(sim: RunningSimulator) -> None:
    sim.configure(sim.fast_config(**{"sim-openai": {"rpm": 60, "burst_s": 1}}))
    before = sim.stats()["started_at"]
    assert sim.chat("openai").status_code == 200
    assert sim.chat("openai").status_code == 429
    assert sim.http.post("/_reset").status_code == 200
    stats = sim.stats()
    assert stats["providers"] == {}
    assert stats["started_at"] >= before
    assert sim.chat("openai").status_code == 200


def test_get_config_round_trips(sim: RunningSimulator) -> None:
    served = sim.http.get("/_config").json()
    assert served == sim.fast_config()
    assert sim.http.put("/_config", json=served).status_code == 200


def test_put_config_replaces_everything_and_resets_buckets(sim: RunningSimulator) -> None:
    sim.configure(sim.fast_config(**{"sim-openai": {"rpm": 60, "burst_s": 1}}))
    assert sim.chat("openai").status_code == 200
    assert sim.chat("openai").status_code == 429
    only = {"providers": {"solo": {"format": "openai", "models": {"m": {}}}}, "seed": 7}
    response = sim.http.put("/_config", json=only)
    assert response.status_code == 200
    assert response.json()["seed"] == 7
    assert sim.post("/solo/v1/chat/completions", {"model": "m", "messages": []}).status_code == 400
    ok = sim.post("/solo/v1/chat/completions", {"model": "m", "messages": [{"role": "user"}]})
    assert ok.status_code == 200
    assert sim.chat("openai").status_code == 404  # sim-openai is gone
    sim.http.put("/_config", json=sim.fast_config(**{"sim-openai": {"rpm": 60, "burst_s": 1}}))
    assert sim.chat("openai").status_code == 200  # fresh buckets


INVALID_CONFIGS: list[Any] = [
    "not json",
    [],
    {"providers": {"p": {"format": "smoke-signals", "models": {}}}},
    {"providers": {"p": {"format": "openai", "rpm": 0}}},
    {"providers": {"p": {"format": "openai", "rpm": "many"}}},
    {"providers": {"p": {"format": "openai", "models": {"m": {"errors": {"timeout": 2}}}}}},
    {"providers": {"p": {"format": "openai", "models": {"m": {"output_tokens": [9, 3]}}}}},
    {"providers": {"p": {"format": "openai", "models": {"m": {"latency_ms": -1}}}}},
    {"providers": {"p": {"format": "openai", "typo_field": 1}}},
    {"providers": {"_admin": {"format": "openai"}}},
    {"providers": {"a/b": {"format": "openai"}}},
]


@pytest.mark.parametrize("config", INVALID_CONFIGS)
def test_invalid_config_is_422_and_changes_nothing(sim: RunningSimulator, config: Any) -> None:
    body = config if isinstance(config, str) else json.dumps(config)
    response = sim.http.put("/_config", content=body)
    assert response.status_code == 422
    assert response.json()["detail"]
    assert sim.http.get("/_config").json() == sim.fast_config()


def test_default_config_names_the_catalogs_providers() -> None:
    config = default_config()
    assert {name: p.format for name, p in config.providers.items()} == {
        "sim-openai": "openai",
        "sim-anthropic": "anthropic",
        "sim-gemini": "gemini",
        "sim-ollama": "ollama",
        "sim-groq": "groq",
        "sim-openrouter": "openrouter",
        "sim-vllm": "vllm",
        "sim-lmstudio": "lmstudio",
    }
    models = {m: p.models[m] for p in config.providers.values() for m in p.models}
    assert models["sim-gpt-mini"].latency_ms == 40
    assert models["sim-gpt-mini"].jitter_ms == 20
    assert models["sim-gpt-large"].latency_ms == 120
    assert models["sim-claude-sonnet"].context_window == 200_000
    assert models["sim-gemini-flash"].context_window == 1_000_000
    assert models["sim-llama-small"].context_window == 8192
    for provider in config.providers.values():
        assert (provider.rpm, provider.tpm, provider.keys, provider.down) == (
            None,
            None,
            None,
            False,
        )
