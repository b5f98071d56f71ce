"""What the gateway asks of a provider and what it gets back, independent of wire format."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx


@dataclass(frozen=True, slots=True)
class ChatCall:
    """One chat request to one provider endpoint.

    ``messages`` use the OpenAI chat shape (``{"role", "content", ...}``; content a string or a
    list of parts); each adapter translates them into its own wire format. ``model`` is the
    provider's own model name (the registry's ``upstream_name``), not the gateway's model id.
    """

    base_url: str
    model: str
    messages: list[dict[str, Any]]
    # Secrets stay out of repr(): a logged or raised ChatCall must never show a key.
    api_key: str | None = field(default=None, repr=False)
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    seed: int | None = None
    user: str | None = None
    stream: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class EmbeddingCall:
    """One embeddings request: ``inputs`` are embedded in order, one vector each.

    ``dimensions`` asks models that support it (OpenAI text-embedding-3, Gemini) for shorter
    vectors; ``None`` leaves the model's native size.
    """

    base_url: str
    model: str
    inputs: list[str]
    api_key: str | None = field(default=None, repr=False)
    dimensions: int | None = None
    extra_headers: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the provider sent it (or serialised from its object)


@dataclass(frozen=True, slots=True)
class RateLimitSnapshot:
    """What a provider's rate-limit headers said about the caller's remaining budget.

    Every field is optional: providers send different subsets. ``*_reset_s`` are seconds from
    the response until the budget is fully replenished.
    """

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset_s: float | None = None
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_reset_s: float | None = None
    input_tokens_limit: int | None = None
    input_tokens_remaining: int | None = None
    input_tokens_reset_s: float | None = None
    output_tokens_limit: int | None = None
    output_tokens_remaining: int | None = None
    output_tokens_reset_s: float | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class Completion:
    """A parsed, successful completion."""

    text: str | None
    finish_reason: str | None
    usage: Usage
    tool_calls: list[ToolCall] = field(default_factory=list)
    model: str | None = None
    response_id: str | None = None
    rate_limits: RateLimitSnapshot | None = None


@dataclass(frozen=True, slots=True)
class Embeddings:
    vectors: list[list[float]]
    usage: Usage
    model: str | None = None


class Adapter(Protocol):
    """A provider wire format, sans-I/O: requests out, responses in, no sockets."""

    name: str

    def build_request(self, call: ChatCall) -> httpx.Request: ...

    def parse_response(self, response: httpx.Response) -> Completion:
        """Return the completion or raise a ``ProviderError`` subclass."""
        ...

    def parse_rate_limits(self, headers: httpx.Headers) -> RateLimitSnapshot | None: ...

    def parse_stream(
        self, lines: Iterable[str], *, headers: httpx.Headers | None = None
    ) -> Completion:
        """Aggregate a whole stream's raw lines into one completion, or raise ``ProviderError``.

        ``headers`` are the stream response's headers, used only for ``rate_limits``.
        """
        ...


class EmbeddingsAdapter(Protocol):
    """A wire format that also serves embeddings (OpenAI-compatible, Gemini, Ollama)."""

    name: str

    def build_embeddings_request(self, call: EmbeddingCall) -> httpx.Request: ...

    def parse_embeddings(self, response: httpx.Response) -> Embeddings:
        """Return the vectors in input order or raise a ``ProviderError`` subclass."""
        ...
