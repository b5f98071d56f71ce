"""The catalog's simulated embedding models, answered in each provider's wire format."""

from __future__ import annotations

import base64
import struct

from app.registry.catalog import load_catalog
from app.simulator.config import default_config
from tests.simulator.conftest import RunningSimulator

TEXTS = ["the first passage", "a second, longer passage of text"]


def vectors(sim: RunningSimulator, provider: str, model: str, **extra: object) -> list[list[float]]:
    if provider == "sim-gemini":
        requests = [{"content": {"parts": [{"text": t}]}, **extra} for t in TEXTS]
        path = f"/sim-gemini/v1beta/models/{model}:batchEmbedContents"
        body = sim.post(path, {"requests": requests}).json()
        return [item["values"] for item in body["embeddings"]]
    if provider == "sim-ollama":
        body = sim.post("/sim-ollama/api/embed", {"model": model, "input": TEXTS, **extra}).json()
        return list(body["embeddings"])
    body = sim.post("/sim-openai/v1/embeddings", {"model": model, "input": TEXTS, **extra}).json()
    return [item["embedding"] for item in body["data"]]


def test_every_simulated_embedding_model_of_the_catalog_is_served(sim: RunningSimulator) -> None:
    served = {
        (provider, model)
        for provider, spec in default_config().providers.items()
        for model in spec.models
    }
    embedding = [
        m
        for m in load_catalog().models.values()
        if m.provider.startswith("sim-") and "embeddings" in m.capabilities
    ]
    assert {m.provider for m in embedding} == {"sim-openai", "sim-gemini", "sim-ollama"}
    for model in embedding:
        assert (model.provider, model.upstream) in served
        got = vectors(sim, model.provider, model.upstream)
        assert len(got) == len(TEXTS)
        assert got[0] != got[1]


def test_vectors_are_the_same_for_the_same_text_in_every_format(sim: RunningSimulator) -> None:
    openai = vectors(sim, "sim-openai", "sim-embed-small", dimensions=32)
    gemini = vectors(sim, "sim-gemini", "sim-gemini-embed", outputDimensionality=32)
    ollama = vectors(sim, "sim-ollama", "sim-nomic-embed", dimensions=32)
    assert openai == gemini == ollama
    assert [len(v) for v in openai] == [32, 32]
    assert vectors(sim, "sim-openai", "sim-embed-small", dimensions=32) == openai


def test_native_sizes_and_base64_float32(sim: RunningSimulator) -> None:
    assert len(vectors(sim, "sim-openai", "sim-embed-large")[0]) == 3072
    floats = vectors(sim, "sim-openai", "sim-embed-small")[0]
    body = sim.post(
        "/sim-openai/v1/embeddings",
        {"model": "sim-embed-small", "input": TEXTS[0], "encoding_format": "base64"},
    ).json()
    packed = base64.b64decode(body["data"][0]["embedding"])
    assert struct.unpack(f"<{len(floats)}f", packed) == struct.unpack(
        f"<{len(floats)}f", struct.pack(f"<{len(floats)}f", *floats)
    )


def test_gemini_refuses_more_than_100_inputs_in_one_batch(sim: RunningSimulator) -> None:
    requests = [{"content": {"parts": [{"text": f"t{i}"}]}} for i in range(101)]
    response = sim.post(
        "/sim-gemini/v1beta/models/sim-gemini-embed:batchEmbedContents", {"requests": requests}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert "at most 100 requests" in error["message"]
    ok = sim.post(
        "/sim-gemini/v1beta/models/sim-gemini-embed:batchEmbedContents",
        {"requests": requests[:100]},
    )
    assert ok.status_code == 200
