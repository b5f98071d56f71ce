"""One attempt of an embedding job: its inputs in as few provider calls as the format allows.

Wire formats cap what one call may carry (Gemini's ``batchEmbedContents``: 100 inputs;
OpenAI: 2,048 inputs and 300,000 tokens), so a larger job is split into consecutive calls
inside one attempt, all within the attempt's timeout, and its rate-limit admission takes one
request token per call. If a later call fails, the attempt fails with what the earlier calls
were billed (the provider counted them), and a retry embeds every input again.

Tokens are what the provider reports; a format that reports none (Gemini's batch endpoint)
is billed at a typical 4 UTF-8 bytes per token, never zero.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from app.embeddings.vectors import Packed, pack
from app.errors import InvalidInput
from app.providers import get_adapter, get_embeddings_adapter, send
from app.providers.errors import InvalidProviderRequest, ProviderError, ServerFailed, TimedOut
from app.providers.types import Completion, EmbeddingCall, RateLimitSnapshot, Usage
from app.ratelimit.estimate import estimate_input_tokens
from app.registry.keys import ProviderKey
from app.registry.service import ModelInfo, ProviderInfo

MAX_INPUTS_PER_CALL = {"gemini": 100}
DEFAULT_MAX_INPUTS_PER_CALL = 2048
MAX_TOKENS_PER_CALL = 300_000  # OpenAI's cap on one request, against the upper-bound estimate
TYPICAL_BYTES_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class EmbeddingAnswer:
    """What an attempt's calls returned together."""

    packed: Packed
    usage: Usage
    http_status: int
    rate_limits: RateLimitSnapshot | None


def split(inputs: list[str], wire_format: str) -> Iterator[list[str]]:
    """``inputs`` in order, cut into the calls ``wire_format`` allows."""
    most = MAX_INPUTS_PER_CALL.get(wire_format, DEFAULT_MAX_INPUTS_PER_CALL)
    chunk: list[str] = []
    tokens = 0
    for text in inputs:
        cost = estimate_input_tokens([text])
        if chunk and (len(chunk) == most or tokens + cost > MAX_TOKENS_PER_CALL):
            yield chunk
            chunk, tokens = [], 0
        chunk.append(text)
        tokens += cost
    if chunk:
        yield chunk


def call_count(request: dict[str, Any], wire_format: str) -> int:
    """How many provider calls a stored job request needs on ``wire_format`` (chat: one)."""
    inputs = request.get("input")
    if not isinstance(inputs, list):
        return 1
    return sum(1 for _ in split(inputs, wire_format))


def embed(
    http: httpx.Client,
    request: dict[str, Any],
    model: ModelInfo,
    provider: ProviderInfo,
    key: ProviderKey,
    *,
    timeout: float,
) -> EmbeddingAnswer:
    """Embed a stored request's inputs on ``model``; raise the classified ``ProviderError``
    (carrying what earlier calls were billed) if any call fails."""
    try:
        adapter = get_embeddings_adapter(provider.wire_format)
    except InvalidInput as err:  # an operator gave `embeddings` to a chat-only endpoint
        raise InvalidProviderRequest(f"{provider.name}: {err.message}") from None
    dimensions = request.get("dimensions")
    deadline = time.monotonic() + timeout
    vectors: list[list[float]] = []
    billed = 0
    response: httpx.Response | None = None
    for chunk in split(request["input"], provider.wire_format):
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimedOut(f"the provider did not embed every input within {timeout:g}s")
            call = EmbeddingCall(
                base_url=provider.base_url,
                model=model.upstream,
                inputs=chunk,
                api_key=key.secret,
                dimensions=dimensions,
            )
            response = send(http, adapter.build_embeddings_request(call), timeout=left)
            got = adapter.parse_embeddings(response)
            if len(got.vectors) != len(chunk):
                raise ServerFailed(
                    f"{provider.name}: {len(got.vectors)} vectors for {len(chunk)} inputs",
                    status_code=response.status_code,
                )
        except ProviderError as err:
            if billed and err.completion is None:
                err.completion = _billed(billed)
            raise
        vectors += got.vectors
        billed += got.usage.prompt_tokens or _typical_tokens(chunk)
    assert response is not None  # a job has at least one input
    try:
        packed = pack(vectors)
    except ValueError as err:
        raise ServerFailed(f"{provider.name}: {err}", completion=_billed(billed)) from None
    if dimensions is not None and packed.dimensions != dimensions:
        raise InvalidProviderRequest(
            f"{model.id} does not support dimensions={dimensions}: it returned "
            f"{packed.dimensions}-dimensional vectors",
            completion=_billed(billed),
        )
    return EmbeddingAnswer(
        packed=packed,
        usage=Usage(billed, 0),
        http_status=response.status_code,
        rate_limits=get_adapter(provider.wire_format).parse_rate_limits(response.headers),
    )


def _billed(tokens: int) -> Completion:
    return Completion(text=None, finish_reason=None, usage=Usage(tokens, 0))


def _typical_tokens(inputs: list[str]) -> int:
    return sum(-(-len(text.encode()) // TYPICAL_BYTES_PER_TOKEN) for text in inputs)
