"""Why a model stopped, in OpenAI's words: ``Completion.finish_reason`` keeps the provider's
own (``end_turn``, ``MAX_TOKENS``…); OpenAI-shaped answers need one of OpenAI's five."""

from __future__ import annotations

OPENAI_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})

_REASONS = {
    # Anthropic
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    # Gemini
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}


def openai_finish_reason(reason: str | None, *, tool_calls: bool = False) -> str:
    """The provider's ``reason`` as OpenAI's; a call of tools is ``tool_calls`` whatever the
    provider said, and a reason nobody maps is ``stop`` (the answer is whole)."""
    if tool_calls:
        return "tool_calls"
    if reason in OPENAI_REASONS:
        return reason
    return _REASONS.get(reason or "", "stop")
