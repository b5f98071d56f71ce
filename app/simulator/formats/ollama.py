"""Ollama's wire format: ``/api/chat`` (NDJSON stream unless ``"stream": false``),
``/api/embed`` and ``/api/tags``.

Shapes follow ``tests/fixtures/wire/ollama_*.json``: usage as ``prompt_eval_count`` /
``eval_count``, durations in nanoseconds, errors as ``{"error": "<text>"}``. Ollama has no
authentication and no content filter; when a provider configures ``keys`` the simulator
reads ``Authorization: Bearer``, as the reverse proxies put in front of Ollama do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from app.simulator.calls import ChatRequest, EmbedRequest, HttpRequest, Operation, Route
from app.simulator.config import SimModel
from app.simulator.faults import Fault, SimError
from app.simulator.formats.base import (
    ReplyMeta,
    WireFormat,
    content_text,
    invalid,
    is_base64,
    iso_timestamp,
    string_list,
)
from app.simulator.tokens import Finish, Reply
from app.simulator.tools import ToolSpec, choose_tool, spec_of

_ROUTES = {
    ("POST", "/api/chat"): Route(Operation.CHAT),
    ("POST", "/api/embed"): Route(Operation.EMBED),
    ("GET", "/api/tags"): Route(Operation.MODELS),
}
_DONE_REASON = {
    Finish.STOP: "stop",
    Finish.LENGTH: "length",
    Finish.CONTENT_FILTER: "stop",
    Finish.TOOL_CALLS: "stop",  # Ollama reports a tool call with an ordinary stop
}
_ERRORS: dict[Fault, tuple[int, str | None]] = {
    Fault.NO_ROUTE: (404, "404 page not found"),
    Fault.AUTH: (401, "unauthorized"),
    Fault.INVALID_JSON: (400, "invalid character looking for beginning of value"),
    Fault.INVALID_REQUEST: (400, None),
    Fault.NOT_FOUND: (404, None),
    Fault.CONTEXT_LENGTH: (400, "the input length exceeds the context length"),
    Fault.RATE_LIMIT: (429, "too many requests"),
    Fault.SERVER_ERROR: (500, "llama runner process has terminated: exit status 2"),
    Fault.UNAVAILABLE: (503, "service unavailable"),
    Fault.OVERLOADED: (
        503,
        "server overloaded, please try again. maximum pending requests exceeded",
    ),
    Fault.TIMEOUT: (504, "timed out waiting for llama runner to start"),
}


def _durations(duration_s: float) -> dict[str, int]:
    """Ollama's nanosecond timings, split from the simulated generation time."""
    total = max(int(duration_s * 1e9), 1000)
    load, prompt_eval = total // 100, total // 10
    return {
        "total_duration": total,
        "load_duration": load,
        "prompt_eval_duration": prompt_eval,
        "eval_duration": total - load - prompt_eval,
    }


def _num_predict(options: Any) -> int | None:
    """``options.num_predict`` as a max-tokens count (-1 and -2 mean "no limit")."""
    if options is None:
        return None
    if not isinstance(options, dict):
        raise invalid("json: cannot unmarshal options into Go value of type map[string]any")
    value = options.get("num_predict")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid('option "num_predict" must be of type integer')
    return value if value > 0 else None


class OllamaFormat(WireFormat):
    name = "ollama"
    filters_content = False

    def route(self, request: HttpRequest, path: str) -> Route | None:
        return _ROUTES.get((request.method, path))

    def parse_chat(self, body: Any, route: Route) -> ChatRequest:
        if not isinstance(body, dict):
            raise invalid("json: cannot unmarshal into Go value of type api.ChatRequest")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise invalid("model is required")
        messages = body.get("messages") or []
        if not isinstance(messages, list):
            raise invalid("json: cannot unmarshal messages into Go value of type []api.Message")
        texts: list[str] = []
        images = 0
        for message in messages:
            text = content_text(message.get("content")) if isinstance(message, dict) else None
            if text is None:
                raise invalid("json: cannot unmarshal message into Go value of type api.Message")
            texts.append(text)
            images += _images(message)
        stream = body.get("stream", True)  # Ollama streams unless told not to
        if not isinstance(stream, bool):
            raise invalid("json: cannot unmarshal stream into Go value of type bool")
        tool = _tool(body, messages)
        max_tokens = _num_predict(body.get("options"))
        return ChatRequest(model, texts, max_tokens, stream, tool=tool, images=images)

    def parse_embed(self, body: Any, route: Route) -> EmbedRequest:
        if not isinstance(body, dict):
            raise invalid("json: cannot unmarshal into Go value of type api.EmbedRequest")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise invalid("model is required")
        inputs = string_list(body.get("input"))
        if inputs is None:
            raise invalid("invalid input type")
        dimensions = body.get("dimensions")
        if dimensions is not None and (not isinstance(dimensions, int) or dimensions < 1):
            raise invalid("dimensions must be a positive integer")
        return EmbedRequest(model, inputs, dimensions)

    @staticmethod
    def _line(
        chat: ChatRequest, meta: ReplyMeta, content: str, reply: Reply | None = None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reply is not None and reply.tool_call is not None:
            call = reply.tool_call
            function = {"name": call.name, "arguments": call.arguments_object}
            message["tool_calls"] = [{"function": function}]
        return {
            "model": chat.model,
            "created_at": iso_timestamp(meta.created),
            "message": message,
        }

    def _final(self, chat: ChatRequest, reply: Reply, meta: ReplyMeta, content: str) -> Any:
        timings = _durations(meta.duration_s)
        return {
            **self._line(chat, meta, content),
            "done_reason": _DONE_REASON[reply.finish],
            "done": True,
            "total_duration": timings["total_duration"],
            "load_duration": timings["load_duration"],
            "prompt_eval_count": reply.prompt_tokens,
            "prompt_eval_duration": timings["prompt_eval_duration"],
            "eval_count": reply.completion_tokens,
            "eval_duration": timings["eval_duration"],
        }

    def render_chat(self, chat: ChatRequest, reply: Reply, meta: ReplyMeta) -> Any:
        final = self._final(chat, reply, meta, reply.text)
        if reply.tool_call is not None:
            final["message"] = self._line(chat, meta, "", reply)["message"]
        return final

    def render_stream(self, chat: ChatRequest, reply: Reply, meta: ReplyMeta) -> list[bytes]:
        lines = [
            {**self._line(chat, meta, piece), "done": False}
            for piece in reply.deltas(self.words_per_delta)
        ]
        if reply.tool_call is not None:  # the call arrives whole, in a chunk before the last
            lines.append({**self._line(chat, meta, "", reply), "done": False})
        lines.append(self._final(chat, reply, meta, ""))
        return [orjson.dumps(line) + b"\n" for line in lines]

    def render_stream_error(self) -> bytes:
        _, body = self.render_error(SimError(Fault.OVERLOADED))
        return orjson.dumps(body) + b"\n"

    def stream_media_type(self, route: Route) -> bytes:
        return b"application/x-ndjson"

    def render_embed(
        self, embed: EmbedRequest, vectors: list[list[float]], prompt_tokens: int, route: Route
    ) -> Any:
        timings = _durations(0.0)
        return {
            "model": embed.model,
            "embeddings": vectors,
            "total_duration": timings["total_duration"],
            "load_duration": timings["load_duration"],
            "prompt_eval_count": prompt_tokens,
        }

    def render_models(self, models: Mapping[str, SimModel]) -> Any:
        return {
            "models": [
                {
                    "name": name,
                    "model": name,
                    "modified_at": "2025-01-01T00:00:00Z",
                    "size": 0,
                    "digest": "0" * 64,
                    "details": {"format": "gguf", "family": "simulated"},
                }
                for name in models
            ]
        }

    def render_error(self, error: SimError) -> tuple[int, Any]:
        status, message = _ERRORS[error.fault]
        if message is None:
            message = (
                f"model '{error.model}' not found"
                if error.fault is Fault.NOT_FOUND
                else error.detail
            )
        return status, {"error": message}


def _images(message: dict[str, Any]) -> int:
    """How many ``images`` a message carries: bare base64, as Ollama takes them (a data: URL
    or a link is refused, as Ollama's decoder refuses it)."""
    images = message.get("images")
    if images is None:
        return 0
    if not isinstance(images, list) or not all(is_base64(image) for image in images):
        raise invalid("illegal base64 data at input byte 4")
    return len(images)


def _tool(body: dict[str, Any], messages: list[Any]) -> ToolSpec | None:
    """The tool the simulated model calls: Ollama takes OpenAI's ``tools`` (no tool_choice)."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not messages:
        return None
    offered = [
        spec_of(tool["function"].get("name"), tool["function"].get("parameters"))
        for tool in tools
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
    ]
    answered = isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"
    return choose_tool(offered, answered=answered)
