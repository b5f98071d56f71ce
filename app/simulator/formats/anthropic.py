"""Anthropic's wire format: ``/v1/messages`` (plain and SSE) and ``/v1/models``.

Shapes follow ``tests/fixtures/wire/anthropic_*.json``: ``message`` objects, the
``message_start … message_stop`` event stream, ``{"type": "error", "error": {...}}`` bodies,
and ``anthropic-ratelimit-*`` headers whose resets are RFC 3339 timestamps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from app.simulator.calls import ChatRequest, HttpRequest, Operation, Route
from app.simulator.config import SimModel
from app.simulator.faults import Fault, SimError
from app.simulator.formats.base import (
    IMAGE_MEDIA_TYPES,
    Headers,
    ReplyMeta,
    WireFormat,
    content_text,
    invalid,
    is_base64,
    positive_int,
    sse_event,
)
from app.simulator.limiter import BucketView
from app.simulator.tokens import Finish, Reply
from app.simulator.tools import ToolSpec, choose_tool, spec_of

_ROUTES = {
    ("POST", "/v1/messages"): Route(Operation.CHAT),
    ("GET", "/v1/models"): Route(Operation.MODELS),
}
_STOP = {
    Finish.STOP: "end_turn",
    Finish.LENGTH: "max_tokens",
    Finish.CONTENT_FILTER: "refusal",
    Finish.TOOL_CALLS: "tool_use",
}
_LIMIT_NAMES = {
    "requests": "requests",
    "tokens": "tokens",
    "input_tokens": "input tokens",
    "output_tokens": "output tokens",
}
# fault -> (status, error type, fixed message or None when built from the error)
_ERRORS: dict[Fault, tuple[int, str, str | None]] = {
    Fault.NO_ROUTE: (404, "not_found_error", "Not Found"),
    Fault.AUTH: (401, "authentication_error", None),
    Fault.INVALID_JSON: (400, "invalid_request_error", "The request body is not valid JSON."),
    Fault.INVALID_REQUEST: (400, "invalid_request_error", None),
    Fault.NOT_FOUND: (404, "not_found_error", None),
    Fault.CONTEXT_LENGTH: (400, "invalid_request_error", None),
    Fault.RATE_LIMIT: (429, "rate_limit_error", None),
    Fault.SERVER_ERROR: (500, "api_error", "Internal server error"),
    Fault.UNAVAILABLE: (503, "api_error", "Service Unavailable"),
    Fault.OVERLOADED: (529, "overloaded_error", "Overloaded"),
    Fault.TIMEOUT: (504, "timeout_error", "Request timed out"),
}


def rfc3339_after(now: float, seconds: float) -> str:
    """The whole second (UTC, RFC 3339) by which ``seconds`` from ``now`` have passed."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.ceil(now + seconds)))


class AnthropicFormat(WireFormat):
    name = "anthropic"

    def route(self, request: HttpRequest, path: str) -> Route | None:
        return _ROUTES.get((request.method, path))

    def api_key(self, request: HttpRequest) -> str | None:
        return request.header(b"x-api-key") or None

    def parse_chat(self, body: Any, route: Route) -> ChatRequest:
        if not isinstance(body, dict):
            raise invalid("Input should be an object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise invalid("model: Field required")
        try:
            max_tokens = positive_int(body.get("max_tokens"))
        except ValueError:
            raise invalid("max_tokens: Input should be a valid integer >= 1") from None
        if max_tokens is None:
            raise invalid("max_tokens: Field required")
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise invalid("messages: Field required")
        if not messages:
            raise invalid("messages: at least one message is required")
        texts: list[str] = []
        system = content_text(body.get("system"))
        if system is None:
            raise invalid("system: Input should be a valid string or a list of text blocks")
        if system:
            texts.append(system)
        images = 0
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                raise invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
            text = content_text(message.get("content"))
            if text is None:
                raise invalid(f"messages.{index}.content: Input should be a valid list")
            texts.append(text)
            images += _images(message.get("content"), index)
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise invalid("stream: Input should be a valid boolean")
        tool = _tool(body, messages)
        return ChatRequest(model, texts, max_tokens, bool(stream), tool=tool, images=images)

    @staticmethod
    def _usage(reply: Reply, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": reply.prompt_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def _message(self, chat: ChatRequest, reply: Reply, meta: ReplyMeta) -> dict[str, Any]:
        return {
            "id": "msg_" + meta.uid,
            "type": "message",
            "role": "assistant",
            "model": chat.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(reply, 1),
        }

    def render_chat(self, chat: ChatRequest, reply: Reply, meta: ReplyMeta) -> Any:
        message = self._message(chat, reply, meta)
        if reply.tool_call is not None:
            call = reply.tool_call
            message["content"] = [
                {
                    "type": "tool_use",
                    "id": "toolu_" + meta.uid,
                    "name": call.name,
                    "input": call.arguments_object,
                }
            ]
        elif reply.finish is not Finish.CONTENT_FILTER:
            message["content"] = [{"type": "text", "text": reply.text}]
        message["stop_reason"] = _STOP[reply.finish]
        message["usage"] = self._usage(reply, reply.completion_tokens)
        return message

    def render_stream(self, chat: ChatRequest, reply: Reply, meta: ReplyMeta) -> list[bytes]:
        start = {"type": "message_start", "message": self._message(chat, reply, meta)}
        call = reply.tool_call
        content: dict[str, Any] = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in reply.deltas(self.words_per_delta)]
        if call is not None:  # the input is streamed as JSON fragments after an empty {}
            content = {"type": "tool_use", "id": "toolu_" + meta.uid, "name": call.name}
            content["input"] = {}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in call.pieces()]
        block = {"type": "content_block_start", "index": 0, "content_block": content}
        chunks = [sse_event(start, "message_start"), sse_event(block, "content_block_start")]
        chunks.append(sse_event({"type": "ping"}, "ping"))
        for delta in deltas:
            event = {"type": "content_block_delta", "index": 0, "delta": delta}
            chunks.append(sse_event(event, "content_block_delta"))
        chunks.append(sse_event({"type": "content_block_stop", "index": 0}, "content_block_stop"))
        end = {
            "type": "message_delta",
            "delta": {"stop_reason": _STOP[reply.finish], "stop_sequence": None},
            "usage": {
                "input_tokens": reply.prompt_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": reply.completion_tokens,
            },
        }
        chunks.append(sse_event(end, "message_delta"))
        chunks.append(sse_event({"type": "message_stop"}, "message_stop"))
        return chunks

    def render_stream_error(self) -> bytes:
        _, body = self.render_error(SimError(Fault.OVERLOADED))
        return sse_event(body, "error")

    def render_models(self, models: Mapping[str, SimModel]) -> Any:
        names = list(models)
        data = [
            {
                "type": "model",
                "id": name,
                "display_name": name,
                "created_at": "2025-01-01T00:00:00Z",
            }
            for name in names
        ]
        first, last = (names[0], names[-1]) if names else (None, None)
        return {"data": data, "has_more": False, "first_id": first, "last_id": last}

    def render_error(self, error: SimError) -> tuple[int, Any]:
        status, kind, message = _ERRORS[error.fault]
        if message is None:
            message = self._message_for(error)
        return status, {"type": "error", "error": {"type": kind, "message": message}}

    @staticmethod
    def _message_for(error: SimError) -> str:
        fault = error.fault
        if fault is Fault.AUTH:
            return "x-api-key header is required" if error.key is None else "invalid x-api-key"
        if fault is Fault.NOT_FOUND:
            return f"model: {error.model}"
        if fault is Fault.CONTEXT_LENGTH:
            prompt, output, window = error.prompt_tokens, error.output_tokens, error.context_window
            if prompt > window:
                return f"prompt is too long: {prompt} tokens > {window} maximum"
            return (
                f"input length and `max_tokens` exceed context limit: {prompt} + {output} > "
                f"{window}, decrease input length or `max_tokens` and try again"
            )
        facts = error.rate_limit
        if fault is Fault.RATE_LIMIT and facts is not None:
            return (
                "This request would exceed the rate limit for your organization (simulator) of "
                f"{facts.limit:,} {_LIMIT_NAMES[facts.kind]} per minute. For details, refer to: "
                "https://docs.claude.com/en/api/rate-limits. You can see the response headers "
                "for current usage. Please reduce the prompt length or the maximum tokens "
                "requested, or try again later."
            )
        if fault is Fault.RATE_LIMIT:
            return "Number of concurrent connections has exceeded your rate limit."
        return error.detail

    def rate_limit_headers(self, views: Mapping[str, BucketView], now: float) -> Headers:
        reported = dict(views)
        if "tokens" not in reported and "input_tokens" in reported and "output_tokens" in reported:
            # Like the real API: without a combined limit, "tokens" sums input and output.
            inp, out = reported["input_tokens"], reported["output_tokens"]
            reported["tokens"] = BucketView(
                inp.limit + out.limit, inp.remaining + out.remaining, max(inp.reset_s, out.reset_s)
            )
        headers: Headers = []
        for kind, view in reported.items():
            prefix = b"anthropic-ratelimit-" + kind.replace("_", "-").encode()
            headers += [
                (prefix + b"-limit", str(view.limit).encode()),
                (prefix + b"-remaining", str(view.remaining).encode()),
                (prefix + b"-reset", rfc3339_after(now, view.reset_s).encode()),
            ]
        return headers

    def reply_headers(self, meta: ReplyMeta) -> Headers:
        return [(b"request-id", b"req_" + meta.uid.encode())]


def _images(content: Any, index: int) -> int:
    """How many ``image`` blocks a message has: a ``base64`` source (a supported media type,
    valid base64) or a ``url`` one; anything else is a 400, as the Messages API answers."""
    if not isinstance(content, list):
        return 0
    count = 0
    for position, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") != "image":
            continue
        where = f"messages.{index}.content.{position}.image.source"
        source = block.get("source")
        kind = source.get("type") if isinstance(source, dict) else None
        if kind == "base64":
            assert isinstance(source, dict)
            if source.get("media_type") not in IMAGE_MEDIA_TYPES:
                raise invalid(
                    f"{where}.base64.media_type: Input should be 'image/jpeg', 'image/png', "
                    "'image/gif' or 'image/webp'"
                )
            if not is_base64(source.get("data")):
                raise invalid(f"{where}.base64.data: The image data is not valid base64")
        elif kind == "url":
            assert isinstance(source, dict)
            if not str(source.get("url", "")).startswith(("http://", "https://")):
                raise invalid(f"{where}.url.url: Input should be a valid URL")
        else:
            raise invalid(f"{where}: Input tag {kind!r} does not match 'base64' or 'url'")
        count += 1
    return count


def _tool(body: dict[str, Any], messages: list[Any]) -> ToolSpec | None:
    """The tool the simulated model calls: Anthropic's ``tools`` and ``tool_choice``."""
    choice = body.get("tool_choice")
    tools = body.get("tools")
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "none" or not isinstance(tools, list):
        return None
    offered = [
        spec_of(tool.get("name"), tool.get("input_schema"))
        for tool in tools
        if isinstance(tool, dict)
    ]
    forced = choice.get("name") if isinstance(choice, dict) and kind == "tool" else None
    last = messages[-1].get("content")
    answered = isinstance(last, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in last
    )
    return choose_tool(offered, forced=forced, answered=answered)
