"""OpenAI chat/completions and embeddings, and the servers that speak it.

One adapter class covers OpenAI and vLLM (whose errors — flat ``{"object": "error", ...}`` or
wrapped with an integer ``code`` — the shared classifier reads); Groq, OpenRouter and LM Studio
are subclasses that add their quirks: Groq's usage under ``x_groq`` in older streams and its
498 "capacity exceeded", OpenRouter's upstream error inside ``error.metadata.raw``, its
moderation 403s and the upstream ``provider`` it names in every response, LM Studio's "no
models loaded".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from app.providers.base import StreamFold, WireAdapter
from app.providers.classify import ErrorReport, report_from_body
from app.providers.ratelimit_headers import openai_style_snapshot
from app.providers.types import (
    ChatCall,
    Completion,
    Delta,
    EmbeddingCall,
    Embeddings,
    RateLimitSnapshot,
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
    decode_json,
    dumps_text,
    expected_shape,
    join_url,
    json_request,
    text_or_none,
    token_count,
)


class OpenAIAdapter(WireAdapter):
    """The OpenAI chat/completions wire format.

    ``max_tokens_field`` is where ``ChatCall.max_tokens`` goes: OpenAI and Groq want
    ``max_completion_tokens`` (reasoning models reject ``max_tokens``), most compatible
    servers only know ``max_tokens``.
    """

    filtered_finish_reasons = frozenset({"content_filter"})

    def __init__(self, name: str, *, max_tokens_field: str = "max_tokens") -> None:
        super().__init__(name)
        self.max_tokens_field = max_tokens_field

    def translate(self, call: ChatCall) -> httpx.Request:
        body = compact(
            {
                "model": call.model,
                "messages": call.messages,
                self.max_tokens_field: call.max_tokens,
                "temperature": call.temperature,
                "top_p": call.top_p,
                "stop": call.stop,
                "tools": call.tools,
                "tool_choice": call.tool_choice,
                "response_format": call.response_format,
                "seed": call.seed,
                "user": call.user,
            }
        )
        if call.stream:
            # Without include_usage a stream reports no tokens, and the ledger needs them.
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        return json_request(
            join_url(call.base_url, "chat/completions"),
            body,
            headers=bearer(call.api_key),
            extra_headers=call.extra_headers,
        )

    def parse_rate_limits(self, headers: httpx.Headers) -> RateLimitSnapshot | None:
        return openai_style_snapshot(headers)

    def completion_from_body(self, body: Any) -> Completion:
        choice = as_object(as_list(body["choices"])[0])
        message = as_object(choice["message"])
        return Completion(
            text=text_or_none(message.get("content")),
            finish_reason=text_or_none(choice.get("finish_reason")),
            usage=self.usage_from(body) or Usage(0, 0),
            tool_calls=[_tool_call(as_object(item)) for item in as_list(message.get("tool_calls"))],
            model=text_or_none(body.get("model")),
            response_id=text_or_none(body.get("id")),
            upstream_provider=text_or_none(body.get("provider")),
        )

    def usage_from(self, body: dict[str, Any]) -> Usage | None:
        """The ``usage`` block of a body or chunk, or ``None`` when it carries none."""
        usage = body.get("usage")
        if usage is None:
            return None
        usage = as_object(usage)
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        return Usage(
            prompt_tokens=token_count(usage.get("prompt_tokens")),
            completion_tokens=token_count(usage.get("completion_tokens")),
            cached_tokens=token_count(prompt_details.get("cached_tokens")),
            reasoning_tokens=token_count(completion_details.get("reasoning_tokens")),
        )

    def stream_fold(self) -> StreamFold:
        return _StreamState(self.usage_from)

    # -- embeddings ----------------------------------------------------------------------

    def build_embeddings_request(self, call: EmbeddingCall) -> httpx.Request:
        body = compact(
            {
                "model": call.model,
                "input": call.inputs,
                "dimensions": call.dimensions,
                "encoding_format": "float",
            }
        )
        return json_request(
            join_url(call.base_url, "embeddings"),
            body,
            headers=bearer(call.api_key),
            extra_headers=call.extra_headers,
        )

    def parse_embeddings(self, response: httpx.Response) -> Embeddings:
        body = self.success_body(response)
        with expected_shape(response):
            items = sorted((as_object(item) for item in as_list(body["data"])), key=_index)
            vectors = [_vector(item["embedding"]) for item in items]
            usage = self.usage_from(body) or Usage(0, 0)
            return Embeddings(vectors=vectors, usage=usage, model=text_or_none(body.get("model")))


# Groq's own status for a full flex tier ("498 Flex Tier Capacity Exceeded").
GROQ_CAPACITY_STATUS = 498
# LM Studio's words for a server with no model (or not the asked one) in memory.
_LMSTUDIO_NOT_LOADED = re.compile(r"no models? loaded|model is unloaded|is not loaded", re.I)


class GroqAdapter(OpenAIAdapter):
    """Groq: OpenAI's format; older streams report usage only under ``x_groq.usage``."""

    def __init__(self) -> None:
        super().__init__("groq", max_tokens_field="max_completion_tokens")

    def usage_from(self, body: dict[str, Any]) -> Usage | None:
        usage = super().usage_from(body)
        if usage is None and isinstance(body.get("x_groq"), dict):
            return super().usage_from(body["x_groq"])
        return usage

    def error_report(self, body: Any, *, http_status: int | None) -> ErrorReport | None:
        report = super().error_report(body, http_status=http_status)
        if report is not None and report.status == GROQ_CAPACITY_STATUS:
            return report.with_codes("capacity_exceeded")  # the flex tier is full: back off
        return report


class OpenRouterAdapter(OpenAIAdapter):
    """OpenRouter: OpenAI's format, fronting many upstreams.

    Its errors wrap the upstream's: ``error.metadata.raw`` holds the upstream message (text
    or JSON), and a 403 with ``metadata.reasons``/``flagged_input`` is its moderation filter.
    """

    def __init__(self) -> None:
        super().__init__("openrouter")

    def error_report(self, body: Any, *, http_status: int | None) -> ErrorReport | None:
        report = super().error_report(body, http_status=http_status)
        error = body.get("error") if isinstance(body, dict) else None
        metadata = error.get("metadata") if isinstance(error, dict) else None
        if report is None or not isinstance(metadata, dict):
            return report
        if "flagged_input" in metadata or "reasons" in metadata:
            report = report.with_codes("moderation_flagged")
        raw = metadata.get("raw")
        if isinstance(raw, str) and raw:
            upstream = _upstream_report(raw)
            message = upstream.message if upstream else raw
            report = replace(report, message=f"{report.message}: {message}")
            if upstream is not None:
                report = replace(
                    report,
                    codes=report.codes + upstream.codes,
                    retry_after=report.retry_after or upstream.retry_after,
                )
        return report


class LMStudioAdapter(OpenAIAdapter):
    """LM Studio's OpenAI-compatible server: "No models loaded" means the model is not there
    (load it, or fall back), not that the request is wrong."""

    def __init__(self) -> None:
        super().__init__("lmstudio")

    def error_report(self, body: Any, *, http_status: int | None) -> ErrorReport | None:
        report = super().error_report(body, http_status=http_status)
        if report is not None and _LMSTUDIO_NOT_LOADED.search(report.message):
            return report.with_codes("model_not_loaded")
        return report


def _upstream_report(raw: str) -> ErrorReport | None:
    try:
        return report_from_body(decode_json(raw), http_status=None)
    except ValueError:
        return None


@dataclass
class _ToolCallDraft:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class _StreamState:
    """A chat.completion.chunk stream folded so far."""

    usage_of: Callable[[dict[str, Any]], Usage | None]
    text: list[str] | None = None
    tools: dict[int, _ToolCallDraft] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    response_id: str | None = None
    upstream_provider: str | None = None

    @property
    def complete(self) -> bool:
        return self.finish_reason is not None

    def add(self, chunk: dict[str, Any]) -> list[Delta]:
        self.model = text_or_none(chunk.get("model")) or self.model
        self.response_id = text_or_none(chunk.get("id")) or self.response_id
        self.upstream_provider = text_or_none(chunk.get("provider")) or self.upstream_provider
        usage = self.usage_of(chunk)
        if usage is not None:  # cumulative: the last report is the whole stream's
            self.usage = usage
        deltas: list[Delta] = []
        for choice in as_list(chunk.get("choices")):
            choice = as_object(choice)
            if choice.get("index", 0) != 0:
                continue
            delta = as_object(choice.get("delta") or {})
            content = text_or_none(delta.get("content"))
            if content is not None:
                self.text = [*(self.text or []), content]
                if content:
                    deltas.append(TextDelta(content))
            for fragment in as_list(delta.get("tool_calls")):
                piece = self._add_tool_fragment(as_object(fragment))
                if piece.id or piece.name or piece.arguments:
                    deltas.append(piece)
            # OpenRouter repeats the finish chunk; the reason is the same either time.
            finish = text_or_none(choice.get("finish_reason"))
            if finish is not None and self.finish_reason is None:
                deltas += self._empty_arguments()
            self.finish_reason = finish or self.finish_reason
        return deltas

    def _add_tool_fragment(self, fragment: dict[str, Any]) -> ToolCallDelta:
        index = int(fragment.get("index", len(self.tools)))
        draft = self.tools.get(index)
        if draft is None:
            draft = self.tools[index] = _ToolCallDraft()
        new_id = None if draft.id else text_or_none(fragment.get("id")) or None
        draft.id = draft.id or new_id or ""
        function = as_object(fragment.get("function") or {})
        # The name comes whole in the first fragment; later fragments repeat it or omit it.
        new_name = None if draft.name else text_or_none(function.get("name")) or None
        draft.name = draft.name or new_name or ""
        arguments = function.get("arguments")
        piece = ""
        if arguments is not None:
            piece = arguments if isinstance(arguments, str) else dumps_text(arguments)
            draft.arguments.append(piece)
        return ToolCallDelta(index, new_id, new_name, piece)

    def _empty_arguments(self) -> list[Delta]:
        """A call that got no argument text has ``{}`` in the completion: stream that too, so
        that what was streamed adds up to the completion."""
        empty = [(i, d) for i, d in sorted(self.tools.items()) if not "".join(d.arguments)]
        for _, draft in empty:
            draft.arguments.append("{}")
        return [ToolCallDelta(index, arguments="{}") for index, _ in empty]

    def completion(self) -> Completion:
        return Completion(
            text=None if self.text is None else "".join(self.text),
            finish_reason=self.finish_reason,
            usage=self.usage or Usage(0, 0),
            tool_calls=[
                ToolCall(id=draft.id, name=draft.name, arguments="".join(draft.arguments) or "{}")
                for _, draft in sorted(self.tools.items())
            ],
            model=self.model,
            response_id=self.response_id,
            upstream_provider=self.upstream_provider,
        )


def _tool_call(item: dict[str, Any]) -> ToolCall:
    function = as_object(item["function"])
    arguments = function.get("arguments")
    if not isinstance(arguments, str):  # some compatible servers send the object itself
        arguments = dumps_text(arguments if arguments is not None else {})
    return ToolCall(id=str(item.get("id") or ""), name=str(function["name"]), arguments=arguments)


def _index(item: dict[str, Any]) -> int:
    index = item.get("index", 0)
    return index if isinstance(index, int) else 0


def _vector(values: Any) -> list[float]:
    if not isinstance(values, list) or not all(isinstance(v, int | float) for v in values):
        raise TypeError("embedding is not a list of numbers")
    return [float(v) for v in values]
