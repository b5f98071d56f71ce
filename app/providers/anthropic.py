"""Anthropic's Messages API (``POST {base_url}/messages``).

The OpenAI-shaped ``ChatCall`` is rebuilt here: system messages move to the top-level
``system``, tool results become ``tool_result`` blocks in a user turn, assistant tool calls
become ``tool_use`` blocks, and ``max_tokens`` — required by Anthropic — defaults to 4096.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from app.errors import InvalidInput
from app.providers.base import StreamFold, WireAdapter
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
from app.providers.types import (
    ChatCall,
    Completion,
    Delta,
    RateLimitSnapshot,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from app.providers.wire import (
    as_list,
    as_object,
    compact,
    dumps_text,
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

    def translate(self, call: ChatCall) -> httpx.Request:
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

    def stream_fold(self) -> StreamFold:
        return _StreamState()


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
    """A content block being streamed: text, or a tool call's JSON arriving in fragments.

    ``tool_index`` is a tool_use block's position among the message's tool calls.
    """

    kind: str
    text: list[str] = field(default_factory=list)
    tool_id: str = ""
    tool_name: str = ""
    start_input: Any = None
    tool_index: int = 0


@dataclass
class _StreamState:
    """An Anthropic event stream folded so far."""

    blocks: dict[int, _Block] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None
    model: str | None = None
    message_id: str | None = None

    @property
    def complete(self) -> bool:
        return self.stop_reason is not None

    def add(self, event: dict[str, Any]) -> list[Delta]:
        kind = event.get("type")
        if kind == "message_start":
            message = as_object(event["message"])
            self.model = text_or_none(message.get("model"))
            self.message_id = text_or_none(message.get("id"))
            self.usage.update(as_object(message.get("usage") or {}))
        elif kind == "content_block_start":
            return self._start(int(event["index"]), as_object(event["content_block"]))
        elif kind == "content_block_delta":
            return self._delta(self.blocks[int(event["index"])], as_object(event["delta"]))
        elif kind == "content_block_stop":
            return self._stop(self.blocks[int(event["index"])])
        elif kind == "message_delta":
            self.stop_reason = text_or_none(as_object(event["delta"]).get("stop_reason"))
            # Counts here are cumulative and replace message_start's.
            self.usage.update(as_object(event.get("usage") or {}))
        return []

    def _start(self, index: int, started: dict[str, Any]) -> list[Delta]:
        tools = sum(1 for block in self.blocks.values() if block.kind == "tool_use")
        block = self.blocks[index] = _Block(
            kind=str(started["type"]),
            text=[str(started.get("text", ""))],
            tool_id=str(started.get("id", "")),
            tool_name=str(started.get("name", "")),
            start_input=started.get("input"),
            tool_index=tools,
        )
        if block.kind == "tool_use":
            return [ToolCallDelta(block.tool_index, block.tool_id, block.tool_name)]
        if block.kind == "text" and block.text[0]:
            return [TextDelta(block.text[0])]
        return []

    @staticmethod
    def _delta(block: _Block, delta: dict[str, Any]) -> list[Delta]:
        if delta.get("type") == "text_delta":
            text = str(delta["text"])
            block.text.append(text)
            return [TextDelta(text)] if text and block.kind == "text" else []
        if delta.get("type") == "input_json_delta":
            piece = str(delta["partial_json"])
            block.text.append(piece)
            if piece and block.kind == "tool_use":
                return [ToolCallDelta(block.tool_index, arguments=piece)]
        return []  # thinking and signature deltas are reasoning, not the answer

    @staticmethod
    def _stop(block: _Block) -> list[Delta]:
        if block.kind != "tool_use" or "".join(block.text):
            return []
        # No fragments came: the call's input is its start input, streamed now in one piece.
        arguments = _streamed_arguments(block)
        block.text.append(arguments)
        return [ToolCallDelta(block.tool_index, arguments=arguments)]

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
