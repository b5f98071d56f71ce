"""The interface every simulated wire format implements, and the parsing helpers they share.

A format is sans-I/O: it matches routes, reads the caller's key, parses request bodies into
``ChatRequest`` / ``EmbedRequest`` (raising ``SimError`` with its own wording), and shapes
the engine's ``Reply`` and ``SimError`` values into its provider's JSON, streams and headers.
The engine decides everything else (status flow, limits, latency, injected faults).
"""

from __future__ import annotations

import base64
import binascii
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

from app.simulator.calls import ChatRequest, EmbedRequest, HttpRequest, Route
from app.simulator.config import SimModel
from app.simulator.faults import Fault, SimError
from app.simulator.limiter import BucketView
from app.simulator.tokens import Reply

Headers = list[tuple[bytes, bytes]]

JSON_MEDIA_TYPE = b"application/json"
SSE_MEDIA_TYPE = b"text/event-stream; charset=utf-8"


@dataclass(frozen=True, slots=True)
class ReplyMeta:
    """Facts of one answer the engine decides and formats print."""

    uid: str  # unique per answer; formats add their own id prefix
    created: float  # unix seconds
    duration_s: float  # simulated time spent generating


def iso_timestamp(unix_s: float) -> str:
    """``2025-08-21T12:41:21.294827Z``: the RFC 3339 form Ollama and Anthropic print."""
    return datetime.fromtimestamp(unix_s, UTC).isoformat().replace("+00:00", "Z")


def sse_event(data: Any, event: str | None = None) -> bytes:
    """One server-sent event carrying ``data`` as JSON."""
    payload = b"data: " + orjson.dumps(data) + b"\n\n"
    return payload if event is None else b"event: " + event.encode() + b"\n" + payload


def content_text(content: Any) -> str | None:
    """The text of a message's content: a string, or the ``text`` of its parts concatenated.

    Parts without text (images, tool calls) contribute nothing; ``None`` means the content
    has a type no provider accepts.
    """
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if not isinstance(content, list):
        return None
    texts: list[str] = []
    for part in content:
        if not isinstance(part, dict):
            return None
        text = part.get("text")
        if isinstance(text, str):
            texts.append(text)
        elif isinstance(part.get("content"), str):  # Anthropic tool_result blocks
            texts.append(part["content"])
    return "".join(texts)


IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def is_base64(data: Any) -> bool:
    """Whether ``data`` is non-empty standard base64 (what every format's inline images are)."""
    if not isinstance(data, str) or not data:
        return False
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def image_url_ok(url: Any) -> bool:
    """An OpenAI ``image_url``: an ``http(s)`` URL, or a ``data:image/...;base64,`` URL."""
    if not isinstance(url, str):
        return False
    if url.startswith(("http://", "https://")):
        return True
    header, comma, data = url.partition(",")
    media_type = header.removeprefix("data:").removesuffix(";base64")
    return (
        bool(comma)
        and header.endswith(";base64")
        and media_type in IMAGE_MEDIA_TYPES
        and (is_base64(data))
    )


def image_url_count(content: Any, index: int) -> int:
    """How many OpenAI ``image_url`` parts ``messages[index]`` has; one that is not a usable
    image is a 400 (OpenAI's format and every server that speaks it)."""
    if not isinstance(content, list):
        return 0
    count = 0
    for part in content:
        if isinstance(part, dict) and part.get("type") == "image_url":
            image = part.get("image_url")
            if not isinstance(image, dict) or not image_url_ok(image.get("url")):
                raise invalid(
                    f"Invalid 'messages[{index}].content': image_url must be an http(s) URL or "
                    "a base64 data URL of a JPEG, PNG, GIF or WebP image.",
                    f"messages[{index}].content",
                )
            count += 1
    return count


def positive_int(value: Any) -> int | None:
    """``value`` as a max-tokens count: None if absent; ``ValueError`` unless an int >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(value)
    return value


def string_list(value: Any) -> list[str] | None:
    """Embedding inputs: a string or a list of strings (token-id lists become their text)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        return [" ".join(map(str, value))]
    inputs: list[str] = []
    for item in value:
        if isinstance(item, str):
            inputs.append(item)
        elif isinstance(item, list) and all(isinstance(i, int) for i in item):
            inputs.append(" ".join(map(str, item)))
        else:
            return None
    return inputs


def invalid(detail: str, param: str | None = None) -> SimError:
    """An INVALID_REQUEST error carrying the format's own message."""
    return SimError(Fault.INVALID_REQUEST, detail=detail, param=param)


class WireFormat(ABC):
    """One provider wire format (OpenAI, Anthropic, Gemini, Ollama)."""

    name: ClassVar[str]
    words_per_delta: ClassVar[int] = 1
    filters_content: ClassVar[bool] = True  # has a content filter that ErrorRates can trip

    @abstractmethod
    def route(self, request: HttpRequest, path: str) -> Route | None:
        """What ``path`` (below the provider prefix) asks for, or None if not an endpoint."""

    def api_key(self, request: HttpRequest) -> str | None:
        """The key the caller presented, or None."""
        return request.bearer_token()

    @abstractmethod
    def parse_chat(self, body: Any, route: Route) -> ChatRequest:
        """The chat call in a parsed JSON body; raises an INVALID_REQUEST ``SimError``."""

    def parse_embed(self, body: Any, route: Route) -> EmbedRequest:
        """The embedding call in a parsed JSON body (only formats that route EMBED)."""
        raise SimError(Fault.NO_ROUTE)

    @abstractmethod
    def render_chat(self, chat: ChatRequest, reply: Reply, meta: ReplyMeta) -> Any:
        """The JSON body of a non-streamed chat answer."""

    @abstractmethod
    def render_stream(self, chat: ChatRequest, reply: Reply, meta: ReplyMeta) -> list[bytes]:
        """The chunks of a streamed chat answer, exactly as written to the wire."""

    def stream_media_type(self, route: Route) -> bytes:
        return SSE_MEDIA_TYPE

    def render_stream_error(self) -> bytes:
        """The error event that ends a stream part-way (``ErrorRates.stream_error``): the
        provider's overloaded error, as real ones send it inside a stream after its 200."""
        _, body = self.render_error(SimError(Fault.OVERLOADED))
        return sse_event(body)

    def render_embed(
        self, embed: EmbedRequest, vectors: list[list[float]], prompt_tokens: int, route: Route
    ) -> Any:
        """The JSON body of an embedding answer."""
        raise SimError(Fault.NO_ROUTE)

    @abstractmethod
    def render_models(self, models: Mapping[str, SimModel]) -> Any:
        """The JSON body listing the provider's models."""

    @abstractmethod
    def render_error(self, error: SimError) -> tuple[int, Any]:
        """The status code and JSON body this provider answers ``error`` with."""

    def rate_limit_headers(self, views: Mapping[str, BucketView], now: float) -> Headers:
        """The headers reporting the caller's buckets (most formats send none)."""
        return []

    def reply_headers(self, meta: ReplyMeta) -> Headers:
        """Extra headers of a successful answer (request ids)."""
        return []
