"""What the provider simulator simulates: providers, their models, limits and failure rates.

A ``SimulatorConfig`` is a plain value: build it in Python (``default_config()``), load it from
a JSON or TOML file (``load_config``), or ``PUT`` it as JSON to a running simulator's
``/_config``. Every model forbids unknown fields, so a typo is a validation error rather than
a silently ignored setting.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WireFormatName = Literal[
    "openai", "anthropic", "gemini", "ollama", "groq", "openrouter", "vllm", "lmstudio"
]

# A provider name is the first path segment of its routes; "_" opens the admin namespace.
_PROVIDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorRates(_Frozen):
    """Probabilities (0..1) of injected failures, each drawn independently per request.

    When several fire at once the first in this order wins: timeout, server_error,
    unavailable, overloaded, rate_limit, malformed, content_filter, stream_error,
    stream_stall. The last two fail streams only, half-way through their chunks, after the
    200 and the first deltas: ``stream_error`` with the format's in-stream error event
    (overloaded), ``stream_stall`` by sending nothing more for ``hang_s`` and then ending
    the stream unfinished. ``timeout`` holds a request for ``hang_s`` before answering 504.
    """

    server_error: float = Field(0.0, ge=0.0, le=1.0)
    unavailable: float = Field(0.0, ge=0.0, le=1.0)
    overloaded: float = Field(0.0, ge=0.0, le=1.0)
    rate_limit: float = Field(0.0, ge=0.0, le=1.0)
    timeout: float = Field(0.0, ge=0.0, le=1.0)
    malformed: float = Field(0.0, ge=0.0, le=1.0)
    content_filter: float = Field(0.0, ge=0.0, le=1.0)
    stream_error: float = Field(0.0, ge=0.0, le=1.0)
    stream_stall: float = Field(0.0, ge=0.0, le=1.0)
    hang_s: float = Field(300.0, ge=0.0)


class SimModel(_Frozen):
    """One model a simulated provider serves: its speed, window and failure rates."""

    latency_ms: float = Field(0.0, ge=0.0)
    jitter_ms: float = Field(0.0, ge=0.0)
    tokens_per_s: float | None = Field(None, gt=0.0)
    context_window: int = Field(128_000, ge=1)
    max_output_tokens: int = Field(4096, ge=1)
    output_tokens: tuple[int, int] = (8, 64)
    embedding_dim: int = Field(768, ge=1, le=8192)
    # Answer a ``response_format`` request in the JSON it asks for (app/simulator/structured).
    follows_response_format: bool = True
    errors: ErrorRates = ErrorRates()

    @field_validator("output_tokens")
    @classmethod
    def _ordered_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if low < 0 or high < low:
            raise ValueError("output_tokens must be (low, high) with 0 <= low <= high")
        return value


class SimProvider(_Frozen):
    """A simulated provider: a wire format, accepted keys, rate limits and models.

    ``keys=None`` accepts any key (or none). Limits are per minute; a bucket holds
    ``limit * burst_s / 60`` and refills at ``limit / 60`` per second. With
    ``limit_scope="key"`` every key gets its own buckets; with ``"provider"`` they share one set.
    """

    format: WireFormatName
    keys: list[str] | None = None
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    itpm: int | None = Field(None, ge=1)
    otpm: int | None = Field(None, ge=1)
    burst_s: float = Field(60.0, gt=0.0)
    limit_scope: Literal["key", "provider"] = "key"
    down: bool = False
    models: dict[str, SimModel] = Field(default_factory=dict)
    default_model: SimModel | None = None

    def model(self, name: str) -> SimModel | None:
        """The model serving ``name``: its own entry, else ``default_model``, else None."""
        found = self.models.get(name)
        return found if found is not None else self.default_model


class SimulatorConfig(_Frozen):
    """Everything a simulator serves; ``seed`` makes injected failures reproducible."""

    providers: dict[str, SimProvider] = Field(default_factory=dict)
    seed: int = 0

    @model_validator(mode="after")
    def _routable_names(self) -> SimulatorConfig:
        for name in self.providers:
            if not _PROVIDER_NAME.fullmatch(name):
                raise ValueError(
                    f"provider name {name!r} must be a path segment of letters, digits, "
                    "'.', '_' or '-', not starting with '_' (reserved for admin routes)"
                )
        return self


def default_config() -> SimulatorConfig:
    """The simulated providers the demo and tests use; the model catalog refers to these names.

    No rate limits and no injected errors: tests and benchmarks add them through ``/_config``.
    """
    return SimulatorConfig(
        providers={
            "sim-openai": SimProvider(
                format="openai",
                models={
                    "sim-gpt-mini": SimModel(latency_ms=40, jitter_ms=20),
                    "sim-gpt-large": SimModel(latency_ms=120, jitter_ms=60),
                    "sim-embed-small": SimModel(latency_ms=20, context_window=8191),
                    "sim-embed-large": SimModel(
                        latency_ms=30, context_window=8191, embedding_dim=3072
                    ),
                },
            ),
            "sim-anthropic": SimProvider(
                format="anthropic",
                models={
                    "sim-claude-haiku": SimModel(latency_ms=60, context_window=200_000),
                    "sim-claude-sonnet": SimModel(latency_ms=150, context_window=200_000),
                },
            ),
            "sim-gemini": SimProvider(
                format="gemini",
                models={
                    "sim-gemini-flash": SimModel(latency_ms=50, context_window=1_000_000),
                    "sim-gemini-embed": SimModel(latency_ms=20, context_window=2048),
                },
            ),
            "sim-ollama": SimProvider(
                format="ollama",
                models={
                    "sim-llama-small": SimModel(latency_ms=30, context_window=8192),
                    "sim-qwen-vl": SimModel(latency_ms=40, context_window=32_768),
                    "sim-nomic-embed": SimModel(latency_ms=10, context_window=8192),
                },
            ),
            "sim-groq": SimProvider(
                format="groq",
                models={"sim-groq-llama": SimModel(latency_ms=10, context_window=131_072)},
            ),
            "sim-openrouter": SimProvider(
                format="openrouter",
                # OpenRouter names models by vendor/model slugs.
                models={"sim/router-gpt": SimModel(latency_ms=60, context_window=128_000)},
            ),
            "sim-vllm": SimProvider(
                format="vllm",
                models={"sim-vllm-qwen": SimModel(latency_ms=20, context_window=32_768)},
            ),
            "sim-lmstudio": SimProvider(
                format="lmstudio",
                models={"sim-lmstudio-qwen": SimModel(latency_ms=30, context_window=32_768)},
            ),
        }
    )


def load_config(path: str | Path) -> SimulatorConfig:
    """Read a ``SimulatorConfig`` from a ``.toml`` file, or from JSON for any other suffix."""
    file = Path(path)
    data = file.read_bytes()
    if file.suffix.lower() == ".toml":
        return SimulatorConfig.model_validate(tomllib.loads(data.decode()))
    return SimulatorConfig.model_validate(orjson.loads(data))
