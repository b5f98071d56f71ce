"""Requests as the simulator sees them: the raw HTTP request, the route it matched, and the
format-independent chat or embedding call a wire format parses out of its body."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs

from app.simulator.tools import ToolSpec


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request, as ASGI delivered it (header names lower-case)."""

    method: str
    path: str
    query: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: bytes) -> str | None:
        """The first value of header ``name`` (lower-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None

    def query_param(self, name: str) -> str | None:
        """The first value of query parameter ``name``, or None."""
        if not self.query:
            return None
        values = parse_qs(self.query.decode("latin-1")).get(name)
        return values[0] if values else None

    def bearer_token(self) -> str | None:
        """The token of an ``Authorization: Bearer <token>`` header, or None."""
        value = self.header(b"authorization")
        if value is None:
            return None
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None


class Operation(StrEnum):
    CHAT = "chat"
    EMBED = "embed"
    MODELS = "models"


@dataclass(frozen=True, slots=True)
class Route:
    """What a request path asks a provider for."""

    operation: Operation
    model: str | None = None  # for formats that carry the model in the path (Gemini)
    stream: bool = False  # for formats that choose streaming by path (Gemini)
    batch: bool = False  # Gemini's batchEmbedContents
    sse: bool = False  # Gemini's ?alt=sse (else a streamed JSON array)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A chat call, whatever format it arrived in."""

    model: str
    texts: list[str]  # one per message, the system prompt first when carried separately
    max_tokens: int | None = None
    stream: bool = False
    include_usage: bool = False  # OpenAI's stream_options.include_usage
    sse: bool = True  # stream framing: server-sent events, or Gemini's JSON array
    tool: ToolSpec | None = None  # the offered tool the model calls (see ``tools``)
    images: int = 0  # image inputs, each checked against the format's shape (see ``tokens``)
    # The JSON asked for by ``response_format`` ({} for any object; see ``structured``).
    json_schema: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """An embedding call, whatever format it arrived in."""

    model: str
    inputs: list[str]
    dimensions: int | None = None
    base64: bool = False  # OpenAI's encoding_format: "base64"
