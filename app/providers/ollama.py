"""Ollama's native API: ``POST /api/chat`` (JSON or NDJSON stream) and ``POST /api/embed``.

Sampling goes into ``options`` (``num_predict``, ``temperature``, ``top_p``, ``stop``);
images travel as bare base64 in ``images``; tool arguments are objects, not JSON text.
Usage is ``prompt_eval_count`` / ``eval_count``, reported on the final (``done``) object.
Errors are bare text (``{"error": "..."}``): a model that was never pulled ("model 'x' not
found, try pulling it first") is ``not_found`` whatever the status it came with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.errors import InvalidInput
from app.providers.base import StreamFold, WireAdapter
from app.providers.classify import ErrorReport
from app.providers.messages import (
    ImagePart,
    content_parts,
    content_text,
    tool_arguments,
    tool_name,
    tool_names_by_id,
)
from app.providers.sse import Framing, NDJSONDecoder
from app.providers.types import (
    ChatCall,
    Completion,
    Delta,
    EmbeddingCall,
    Embeddings,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from app.providers.wire import (
    as_list,
    as_object,
    bearer,
    compact,
    dumps_text,
    expected_shape,
    join_url,
    json_request,
    text_or_none,
    token_count,
)

# "model 'llama3.2' not found", "model \"x\" not found, try pulling it first"
_NOT_PULLED = re.compile(r"model ['\"]?[^'\"]*['\"]? not found|try pulling it", re.IGNORECASE)


class OllamaAdapter(WireAdapter):
    """The Ollama ``/api/chat`` wire format."""

    def __init__(self) -> None:
        super().__init__("ollama")

    def error_report(self, body: Any, *, http_status: int | None) -> ErrorReport | None:
        report = super().error_report(body, http_status=http_status)
        if report is not None and _NOT_PULLED.search(report.message):
            return report.with_codes("model_not_found")
        return report

    def translate(self, call: ChatCall) -> httpx.Request:
        options = compact(
            {
                "num_predict": call.max_tokens,
                "temperature": call.temperature,
                "top_p": call.top_p,
                "stop": call.stop,
                "seed": call.seed,
            }
        )
        body = compact(
            {
                "model": call.model,
                "messages": _messages(call.messages),
                "stream": call.stream,  # Ollama streams unless told not to
                "options": options or None,
                "tools": call.tools,  # Ollama takes OpenAI's function-tool shape as is
                "format": _format(call.response_format),
            }
        )
        return json_request(
            join_url(call.base_url, "api/chat"),
            body,
            headers=bearer(call.api_key),
            extra_headers=call.extra_headers,
        )

    def completion_from_body(self, body: Any) -> Completion:
        stream = _StreamState()
        stream.add(as_object(body))
        if not stream.done:
            raise KeyError("done")
        return stream.completion()

    def stream_fold(self) -> StreamFold:
        return _StreamState()

    def stream_framing(self) -> Framing:
        return NDJSONDecoder()

    # -- embeddings ----------------------------------------------------------------------

    def build_embeddings_request(self, call: EmbeddingCall) -> httpx.Request:
        body = compact({"model": call.model, "input": call.inputs, "dimensions": call.dimensions})
        return json_request(
            join_url(call.base_url, "api/embed"),
            body,
            headers=bearer(call.api_key),
            extra_headers=call.extra_headers,
        )

    def parse_embeddings(self, response: httpx.Response) -> Embeddings:
        body = self.success_body(response)
        with expected_shape(response):
            vectors = [[float(v) for v in as_list(row)] for row in as_list(body["embeddings"])]
            usage = Usage(
                prompt_tokens=token_count(body.get("prompt_eval_count")), completion_tokens=0
            )
            return Embeddings(vectors=vectors, usage=usage, model=text_or_none(body.get("model")))


@dataclass
class _StreamState:
    """Ollama chat objects folded so far; a whole response is a stream of one object."""

    texts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    done: bool = False
    done_reason: str | None = None
    usage: Usage = field(default_factory=lambda: Usage(0, 0))
    model: str | None = None

    @property
    def complete(self) -> bool:
        return self.done

    def add(self, chunk: dict[str, Any]) -> list[Delta]:
        self.model = text_or_none(chunk.get("model")) or self.model
        message = as_object(chunk.get("message") or {})
        text = text_or_none(message.get("content")) or ""
        self.texts.append(text)
        deltas: list[Delta] = [TextDelta(text)] if text else []
        for call in as_list(message.get("tool_calls")):  # each call arrives whole
            function = as_object(as_object(call)["function"])
            arguments = function.get("arguments") or {}
            args = arguments if isinstance(arguments, str) else dumps_text(as_object(arguments))
            index = len(self.tool_calls)
            call_id = text_or_none(as_object(call).get("id")) or f"call_{index}"
            self.tool_calls.append(ToolCall(call_id, str(function["name"]), args))
            deltas.append(ToolCallDelta(index, call_id, str(function["name"]), args))
        if chunk.get("done"):
            self.done = True
            self.done_reason = text_or_none(chunk.get("done_reason"))
            self.usage = Usage(
                prompt_tokens=token_count(chunk.get("prompt_eval_count")),
                completion_tokens=token_count(chunk.get("eval_count")),
            )
        return deltas

    def completion(self) -> Completion:
        return Completion(
            text="".join(self.texts),
            finish_reason=self.done_reason,
            usage=self.usage,
            tool_calls=list(self.tool_calls),
            model=self.model,
        )


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = tool_names_by_id(messages)
    translated: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            raise InvalidInput(f"unsupported message role: {role!r}")
        parts = content_parts(message.get("content"))
        images = [part for part in parts if isinstance(part, ImagePart)]
        if any(image.data is None for image in images):
            raise InvalidInput("ollama accepts images only as data: URLs")
        out: dict[str, Any] = {
            "role": "system" if role == "developer" else role,
            "content": content_text(message.get("content")),
        }
        if images:
            out["images"] = [image.data for image in images]
        if message.get("tool_calls"):
            out["tool_calls"] = [
                {"function": {"name": tool_name(call), "arguments": tool_arguments(call)}}
                for call in message["tool_calls"]
            ]
        if role == "tool" and message.get("tool_call_id") in names:
            out["tool_name"] = names[message["tool_call_id"]]
        translated.append(out)
    return translated


def _format(response_format: dict[str, Any] | None) -> Any:
    """Ollama's ``format``: ``"json"`` or a JSON schema."""
    kind = (response_format or {}).get("type")
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        return ((response_format or {}).get("json_schema") or {}).get("schema")
    return None
