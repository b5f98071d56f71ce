"""Anthropic's Messages API (``POST {base_url}/messages``).

The OpenAI-shaped ``ChatCall`` is rebuilt here: system messages move to the top-level
``system``, tool results become ``tool_result`` blocks in a user turn, assistant tool calls
become ``tool_use`` blocks, and ``max_tokens`` — required by Anthropic — defaults to 4096.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from app.errors import InvalidInput
from app.providers.base import WireAdapter
from app.providers.messages import (
    ImagePart,
    Part,
    TextPart,
    ToolChoice,
    content_parts,
    content_text,
    function_specs,
    tool_arguments,
    tool_choice,
    tool_name,
)
from app.providers.ratelimit_headers import anthropic_style_snapshot
from app.providers.sse import sse_events
from app.providers.types import ChatCall, Completion, RateLimitSnapshot, ToolCall, Usage
from app.providers.wire import (
    as_list,
    as_object,
    compact,
    dumps_text,
    expected_chunk_shape,
    join_url,
    json_request,
    text_or_none,
    token_count,
)

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096


class AnthropicAdapter(WireAdapter):
    """The Anthropic Messages wire format; a ``refusal`` stop is a content-filter failure."""

    filtered_finish_reasons = frozenset({"refusal"})

    def __init__(self) -> None:
        super().__init__("anthropic")

    def build_request(self, call: ChatCall) -> httpx.Request:
        system, messages = _messages(call.messages)
        tools = [
            compact(
                {
                    "name": spec.name,
                    "description": spec.description,
                    "input_schema": spec.parameters,
                }
            )
            for spec in function_specs(call.tools)
        ]
        choice = tool_choice(call.tool_choice)
        # response_format and seed have no Messages API equivalent and are not sent.
        body = compact(
            {
                "model": call.model,
                "max_tokens": call.max_tokens
                if call.max_tokens is not None
                else DEFAULT_MAX_TOKENS,
                "system": system,
                "messages": messages,
                "temperature": call.temperature,
                "top_p": call.top_p,
                "stop_sequences": call.stop,
                "tools": tools or None,
                "tool_choice": None if choice is None else _tool_choice(choice),
                "metadata": None if call.user is None else {"user_id": call.user},
                "stream": True if call.stream else None,
            }
        )
        headers = {"anthropic-version": API_VERSION}
        if call.api_key is not None:
            headers["x-api-key"] = call.api_key
        return json_request(
            join_url(call.base_url, "messages"),
            body,
            headers=headers,
            extra_headers=call.extra_headers,
        )

    def parse_rate_limits(self, headers: httpx.Headers) -> RateLimitSnapshot | None:
        return anthropic_style_snapshot(headers)

    def completion_from_body(self, body: Any) -> Completion:
        texts: list[str] = []
        tool_calls: list[ToolCall] = []
        for block in as_list(body["content"]):
            block = as_object(block)
            if block["type"] == "text":
                texts.append(str(block["text"]))
            elif block["type"] == "tool_use":
                arguments = dumps_text(as_object(block.get("input") or {}))
                tool_calls.append(ToolCall(str(block["id"]), str(block["name"]), arguments))
            # thinking / redacted_thinking blocks are reasoning, not the answer
        return Completion(
            text="".join(texts) if texts else None,
            finish_reason=text_or_none(body.get("stop_reason")),
            usage=_usage(as_object(body["usage"])),
            tool_calls=tool_calls,
            model=text_or_none(body.get("model")),
            response_id=text_or_none(body.get("id")),
        )

    def parse_stream(
        self, lines: Iterable[str], *, headers: httpx.Headers | None = None
    ) -> Completion:
        stream = _StreamState()
        for event in sse_events(lines):
            error = self.stream_error(event.data)
            if error is not None:
                error.completion = stream.completion()
                raise error
            with expected_chunk_shape(event.data):
                stream.add(as_object(event.data))
        completion = stream.completion()
        if completion.finish_reason is None:
            raise self.stream_cut(completion)
        rate_limits = None if headers is None else self.parse_rate_limits(headers)
        return self.finished(replace(completion, rate_limits=rate_limits))


def _usage(usage: dict[str, Any]) -> Usage:
    """Anthropic usage in the OpenAI sense: cached input counts as prompt tokens too.

    Anthropic's ``input_tokens`` exclude cache reads and writes; OpenAI's ``prompt_tokens``
    include cached tokens, with ``cached_tokens`` a subset. The ledger reads the latter.
    """
    cache_read = token_count(usage.get("cache_read_input_tokens"))
    cache_write = token_count(usage.get("cache_creation_input_tokens"))
    return Usage(
        prompt_tokens=token_count(usage.get("input_tokens")) + cache_read + cache_write,
        completion_tokens=token_count(usage.get("output_tokens")),
        cached_tokens=cache_read,
    )


def _messages(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """The top-level system prompt and the alternating user/assistant turns."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(content_text(content))
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
                "content": content_text(content),
            }
            _append(turns, "user", [result])
        elif role == "user":
            _append(turns, "user", [_block(part) for part in content_parts(content)])
        elif role == "assistant":
            blocks = [_block(part) for part in content_parts(content)]
            blocks += [
                {
                    "type": "tool_use",
                    "id": call.get("id"),
                    "name": tool_name(call),
                    "input": tool_arguments(call),
                }
                for call in message.get("tool_calls") or ()
            ]
            _append(turns, "assistant", blocks)
        else:
            raise InvalidInput(f"unsupported message role: {role!r}")
    return ("\n\n".join(system) if system else None), turns


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    # Anthropic rejects empty text blocks, and consecutive same-role turns (several tool
    # results in a row) belong in one turn.
    blocks = [b for b in blocks if not (b["type"] == "text" and not b["text"])]
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _block(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    assert isinstance(part, ImagePart)
    if part.data is not None:
        source = {"type": "base64", "media_type": part.media_type, "data": part.data}
    else:
        source = {"type": "url", "url": part.url}
    return {"type": "image", "source": source}


def _tool_choice(choice: ToolChoice) -> dict[str, Any]:
    if choice.mode == "named":
        return {"type": "tool", "name": choice.name}
    return {"type": {"auto": "auto", "none": "none", "required": "any"}[choice.mode]}


@dataclass
class _Block:
    """A content block being streamed: text, or a tool call's JSON arriving in fragments."""

    kind: str
    text: list[str] = field(default_factory=list)
    tool_id: str = ""
    tool_name: str = ""
    start_input: Any = None


@dataclass
class _StreamState:
    """An Anthropic event stream folded so far."""

    blocks: dict[int, _Block] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None
    model: str | None = None
    message_id: str | None = None

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            message = as_object(event["message"])
            self.model = text_or_none(message.get("model"))
            self.message_id = text_or_none(message.get("id"))
            self.usage.update(as_object(message.get("usage") or {}))
        elif kind == "content_block_start":
            started = as_object(event["content_block"])
            self.blocks[int(event["index"])] = _Block(
                kind=str(started["type"]),
                text=[str(started.get("text", ""))],
                tool_id=str(started.get("id", "")),
                tool_name=str(started.get("name", "")),
                start_input=started.get("input"),
            )
        elif kind == "content_block_delta":
            delta = as_object(event["delta"])
            block = self.blocks[int(event["index"])]
            if delta.get("type") == "text_delta":
                block.text.append(str(delta["text"]))
            elif delta.get("type") == "input_json_delta":
                block.text.append(str(delta["partial_json"]))
        elif kind == "message_delta":
            self.stop_reason = text_or_none(as_object(event["delta"]).get("stop_reason"))
            # Counts here are cumulative and replace message_start's.
            self.usage.update(as_object(event.get("usage") or {}))

    def completion(self) -> Completion:
        ordered = [block for _, block in sorted(self.blocks.items())]
        texts = ["".join(block.text) for block in ordered if block.kind == "text"]
        return Completion(
            text="".join(texts) if texts else None,
            finish_reason=self.stop_reason,
            usage=_usage(self.usage),
            tool_calls=[
                ToolCall(block.tool_id, block.tool_name, _streamed_arguments(block))
                for block in ordered
                if block.kind == "tool_use"
            ],
            model=self.model,
            response_id=self.message_id,
        )


def _streamed_arguments(block: _Block) -> str:
    # content_block_start carries "input": {} as a placeholder; the real input arrives as
    # partial_json fragments. Only a block that got no fragments keeps its start input.
    fragments = "".join(block.text)
    if fragments:
        return fragments
    return dumps_text(block.start_input if isinstance(block.start_input, dict) else {})
