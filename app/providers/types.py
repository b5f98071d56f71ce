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
    # Who served it behind a router (OpenRouter's ``provider``: "OpenAI", "Chutes", ...).
    upstream_provider: str | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of a streamed completion's text, to append to what came before."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call: the call's first piece names it (``id``, ``name``),
    every piece may add a fragment of its JSON ``arguments``.

    ``index`` is the call's position in the completion's ``tool_calls``, as in OpenAI's
    chunks: fragments with the same index belong to the same call.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


Delta = TextDelta | ToolCallDelta


def deltas_of(completion: Completion) -> list[Delta]:
    """A whole completion as the deltas that would have streamed it."""
    deltas: list[Delta] = [TextDelta(completion.text)] if completion.text else []
    deltas += [
        ToolCallDelta(i, call.id, call.name, call.arguments)
        for i, call in enumerate(completion.tool_calls)
    ]
    return deltas


class StreamReader(Protocol):
    """A stream parsed as it arrives: raw lines in, deltas out, the completion at the end.

    The deltas ``feed`` and ``end`` return add up to the completion ``finish`` returns: the
    text is their texts joined, each tool call its pieces joined. All three raise
    ``ProviderError``: an error event inside the stream, a payload that is not the format's,
    a stream cut short, a finish that says the provider's filter withheld the answer.
    """

    def feed(self, line: str) -> list[Delta]:
        """The deltas of the events ``line`` completed."""
        ...

    def end(self) -> list[Delta]:
        """The body is over: the deltas of a last event left without its closing blank line."""
        ...

    def finish(self) -> Completion:
        """The whole completion (ending the stream first if ``end`` was not called)."""
        ...


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

    def stream_reader(self, headers: httpx.Headers | None = None) -> StreamReader:
        """A reader for one stream, fed its raw lines as they arrive (``parse_stream`` is
        this reader fed every line at once)."""
        ...


class EmbeddingsAdapter(Protocol):
    """A wire format that also serves embeddings (OpenAI-compatible, Gemini, Ollama)."""

    name: str

    def build_embeddings_request(self, call: EmbeddingCall) -> httpx.Request: ...

    def parse_embeddings(self, response: httpx.Response) -> Embeddings:
        """Return the vectors in input order or raise a ``ProviderError`` subclass."""
        ...
