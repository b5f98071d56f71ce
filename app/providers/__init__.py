"""Provider adapters: every wire format the gateway speaks, sans-I/O, plus the one transport.

    adapter = get_adapter("anthropic")
    request = adapter.build_request(call)                  # ChatCall -> httpx.Request
    response = send(client, request, timeout=30.0)         # the only network I/O
    completion = adapter.parse_response(response)          # or raises a ProviderError

    streamed = stream_chat(client, adapter, call, timeout=30.0,   # the same, streaming:
                           on_start=..., on_deltas=publish)       # deltas as they arrive

Adapters are stateless singletons, one per wire-format name; ``vllm`` is the plain
OpenAI-compatible format under its own name, ``groq``, ``openrouter`` and ``lmstudio`` add
their quirks to it. ``build_request`` raises ``UntranslatableRequest`` (an ``InvalidInput``
and an ``invalid_request`` provider failure) for a call the format cannot express.
"""

from __future__ import annotations

from app.errors import InvalidInput
from app.providers.anthropic import AnthropicAdapter
from app.providers.errors import (
    AuthFailed,
    ContentFiltered,
    ContextLengthExceeded,
    ErrorKind,
    InvalidProviderRequest,
    ModelNotFound,
    Overloaded,
    ProviderError,
    RateLimited,
    ServerFailed,
    TimedOut,
    UnclassifiedProviderError,
    UntranslatableRequest,
)
from app.providers.gemini import GeminiAdapter
from app.providers.ollama import OllamaAdapter
from app.providers.openai import (
    GroqAdapter,
    LMStudioAdapter,
    OpenAIAdapter,
    OpenRouterAdapter,
)
from app.providers.streaming import Streamed, stream_chat
from app.providers.transport import open_stream, send, send_async
from app.providers.types import (
    Adapter,
    ChatCall,
    Completion,
    Delta,
    EmbeddingCall,
    Embeddings,
    EmbeddingsAdapter,
    RateLimitSnapshot,
    StreamReader,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    deltas_of,
)

__all__ = [
    "WIRE_FORMATS",
    "Adapter",
    "AuthFailed",
    "ChatCall",
    "Completion",
    "ContentFiltered",
    "ContextLengthExceeded",
    "Delta",
    "EmbeddingCall",
    "Embeddings",
    "EmbeddingsAdapter",
    "ErrorKind",
    "InvalidProviderRequest",
    "ModelNotFound",
    "Overloaded",
    "ProviderError",
    "RateLimitSnapshot",
    "RateLimited",
    "ServerFailed",
    "StreamReader",
    "Streamed",
    "TextDelta",
    "TimedOut",
    "ToolCall",
    "ToolCallDelta",
    "UnclassifiedProviderError",
    "UntranslatableRequest",
    "Usage",
    "deltas_of",
    "get_adapter",
    "get_embeddings_adapter",
    "open_stream",
    "send",
    "send_async",
    "stream_chat",
]

_OPENAI = OpenAIAdapter("openai", max_tokens_field="max_completion_tokens")
_GEMINI = GeminiAdapter()
_OLLAMA = OllamaAdapter()
_VLLM = OpenAIAdapter("vllm")
_LMSTUDIO = LMStudioAdapter()
_GROQ = GroqAdapter()
_OPENROUTER = OpenRouterAdapter()

_EMBEDDINGS: dict[str, EmbeddingsAdapter] = {
    "openai": _OPENAI,
    "gemini": _GEMINI,
    "ollama": _OLLAMA,
    "openrouter": _OPENROUTER,
    "vllm": _VLLM,
    "lmstudio": _LMSTUDIO,
}
_ADAPTERS: dict[str, Adapter] = {
    "openai": _OPENAI,
    "anthropic": AnthropicAdapter(),
    "gemini": _GEMINI,
    "ollama": _OLLAMA,
    "openrouter": _OPENROUTER,
    "groq": _GROQ,
    "vllm": _VLLM,
    "lmstudio": _LMSTUDIO,
}

WIRE_FORMATS: tuple[str, ...] = tuple(_ADAPTERS)


def get_adapter(name: str) -> Adapter:
    """The chat adapter for wire format ``name``; unknown names are ``unknown_wire_format``."""
    try:
        return _ADAPTERS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown wire format {name!r}; expected one of {', '.join(WIRE_FORMATS)}",
            code="unknown_wire_format",
        ) from None


def get_embeddings_adapter(name: str) -> EmbeddingsAdapter:
    """The embeddings adapter for ``name``; formats without embeddings are refused."""
    if name not in _ADAPTERS:
        get_adapter(name)  # raises unknown_wire_format
    try:
        return _EMBEDDINGS[name]
    except KeyError:
        raise InvalidInput(
            f"wire format {name!r} has no embeddings endpoint", code="embeddings_unsupported"
        ) from None
