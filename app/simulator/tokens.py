"""Deterministic token accounting and generated content, shared by every wire format.

The simulator has no tokenizer; it uses a fixed, documented approximation so that a gateway
(or a test) can predict every number it reports:

- **prompt tokens** of a chat request: ``3 + sum(4 + ceil(utf8_bytes(text) / 4))`` over its
  messages, where a message's text is its string content or its text parts concatenated.
  Anthropic's ``system`` and Gemini's ``systemInstruction`` count as one more message.
- **image inputs** add ``IMAGE_TOKENS`` each to the prompt (OpenAI's flat rate for a
  low-detail image), whatever their size; each format checks its own image shape first.
- **embedding input tokens**: ``sum(ceil(utf8_bytes(text) / 4))`` over the inputs (no
  per-message overhead); token-id inputs count one token per id.
- **completion tokens**: ``low + crc32(prompt texts) % (high - low + 1)`` within the model's
  ``output_tokens`` range, then capped at ``min(max_tokens, model.max_output_tokens)``; a
  capped completion finishes with the format's "length" reason.
- **completion text**: that many short words from a fixed vocabulary, one token each,
  joined by single spaces.
- **a tool call** (when the request offers tools, see ``tools``) replaces the text: its
  completion tokens are the tokens of its arguments' JSON text, and it finishes with the
  format's tool-call reason.
"""

from __future__ import annotations

import math
import random
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from app.simulator.tools import SimToolCall, ToolSpec, make_call

PROMPT_OVERHEAD = 3
IMAGE_TOKENS = 85
MESSAGE_OVERHEAD = 4
BYTES_PER_TOKEN = 4

# 32 short English words, each one token under any real tokenizer.
_VOCABULARY = (
    *("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy"),
    *("dog", "while", "small", "birds", "sing", "and", "rivers", "run"),
    *("past", "old", "stone", "walls", "under", "grey", "skies", "so"),
    *("we", "wait", "for", "light", "to", "come", "back", "soon"),
)


def text_tokens(text: str) -> int:
    """Tokens in one piece of text: a quarter of its UTF-8 bytes, rounded up."""
    return -(-len(text.encode()) // BYTES_PER_TOKEN)


def prompt_tokens(texts: Sequence[str], images: int = 0) -> int:
    """Prompt tokens of a chat whose messages (system prompt included) have ``texts`` and
    ``images`` image inputs."""
    text = PROMPT_OVERHEAD + sum(MESSAGE_OVERHEAD + text_tokens(text) for text in texts)
    return text + IMAGE_TOKENS * images


def prompt_digest(texts: Sequence[str]) -> int:
    """A stable 32-bit digest of a prompt, the seed of everything generated from it."""
    digest = 0
    for text in texts:
        digest = zlib.crc32(text.encode(), digest)
    return digest


class Finish(StrEnum):
    """Why generation stopped, before each format names it its own way."""

    STOP = "stop"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"
    TOOL_CALLS = "tool_calls"


@dataclass(frozen=True, slots=True)
class Reply:
    """The content of one simulated completion; formats only shape it."""

    words: tuple[str, ...]
    prompt_tokens: int
    finish: Finish
    tool_call: SimToolCall | None = None

    @property
    def completion_tokens(self) -> int:
        if self.tool_call is not None:
            return text_tokens(self.tool_call.arguments)
        return len(self.words)

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def deltas(self, words_per_delta: int = 1) -> list[str]:
        """The text cut into stream deltas that concatenate back to ``text``."""
        pieces: list[str] = []
        for start in range(0, len(self.words), words_per_delta):
            chunk = " ".join(self.words[start : start + words_per_delta])
            pieces.append(chunk if start == 0 else " " + chunk)
        return pieces


def generate_reply(
    texts: Sequence[str],
    *,
    prompt_tokens: int,
    output_range: tuple[int, int],
    max_tokens: int,
    filtered: bool = False,
    tool: ToolSpec | None = None,
) -> Reply:
    """The completion the simulator gives a prompt: same prompt, same words (or call)."""
    if filtered:
        return Reply((), prompt_tokens, Finish.CONTENT_FILTER)
    digest = prompt_digest(texts)
    if tool is not None:
        return Reply((), prompt_tokens, Finish.TOOL_CALLS, make_call(tool, digest))
    low, high = output_range
    count = low + digest % (high - low + 1)
    finish = Finish.STOP
    if count > max_tokens:
        count, finish = max_tokens, Finish.LENGTH
    size = len(_VOCABULARY)
    words = tuple(_VOCABULARY[(digest + 7 * i) % size] for i in range(count))
    return Reply(words, prompt_tokens, finish)


def embedding(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for ``text``: same text, same vector."""
    rng = random.Random(zlib.crc32(text.encode()))
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 8) for v in values]


def float32_bytes(values: Sequence[float]) -> bytes:
    """Little-endian float32 bytes of a vector (OpenAI's ``encoding_format: base64``)."""
    return struct.pack(f"<{len(values)}f", *values)
