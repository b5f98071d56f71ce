"""Token estimates taken before a call, settled against the provider's usage afterwards.

We have no tokenizer for every provider, so the estimate is an upper bound, never below what
a provider counts for ordinary text:

    prompt = 3 + Σ_messages (4 + ceil(bytes / 3) + 1000 × images) + ceil(tool_bytes / 3)

- ``bytes`` is the UTF-8 size of what a message carries: its text (a string, or its text
  parts), its ``name``, and its ``tool_calls`` as JSON. Byte-pair tokenizers rarely go below
  3 bytes per token on prose, code or CJK text, and the simulator counts 4 bytes per token
  (``app.simulator.tokens``), so ``ceil(bytes / 3) >= ceil(bytes / 4)`` always holds.
- 4 per message and 3 per reply are the framing tokens providers add (OpenAI's documented
  counts; the simulator uses the same).
- Each image part counts a fixed 1000 tokens (a large, detailed image at OpenAI or Anthropic
  costs about that); the simulator counts none.
- ``tool_bytes`` is the JSON size of the tool definitions; providers render them into the
  prompt, the simulator ignores them.

The worker takes ``prompt + max_output(...)`` from tpm and settles the difference once the
answer's usage is known.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

REPLY_OVERHEAD = 3  # tokens priming the reply
MESSAGE_OVERHEAD = 4  # role and separators around each message
BYTES_PER_TOKEN = 3  # a floor for real tokenizers; the simulator uses 4
IMAGE_TOKENS = 1000


def _tokens(size: int) -> int:
    return -(-size // BYTES_PER_TOKEN)


def _json_size(value: Any) -> int:
    return len(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))


def _message_tokens(message: dict[str, Any]) -> int:
    size = 0
    images = 0
    content = message.get("content")
    if isinstance(content, str):
        size += len(content.encode())
    elif isinstance(content, list):
        for part in content:
            text = part.get("text") if isinstance(part, dict) else None
            if isinstance(text, str):
                size += len(text.encode())
            elif isinstance(part, dict) and part.get("type") == "image_url":
                images += 1
            else:
                size += _json_size(part)  # a part we do not know: count all of it
    elif content is not None:
        size += _json_size(content)
    name = message.get("name")
    if isinstance(name, str):
        size += len(name.encode())
    if message.get("tool_calls"):
        size += _json_size(message["tool_calls"])
    return MESSAGE_OVERHEAD + _tokens(size) + IMAGE_TOKENS * images


def estimate_prompt_tokens(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> int:
    """An upper bound on the prompt tokens of a chat (OpenAI message shape), as above."""
    total = REPLY_OVERHEAD + sum(_message_tokens(message) for message in messages)
    if tools:
        total += _tokens(_json_size(tools))
    return total


def estimate_input_tokens(inputs: Iterable[str]) -> int:
    """An upper bound on an embedding call's input tokens: ``Σ ceil(bytes / 3)``, no framing."""
    return sum(_tokens(len(text.encode())) for text in inputs)


def estimate_request(request: dict[str, Any], model_max_output: int) -> tuple[int, int]:
    """Upper bounds of a stored job request's (input, output) tokens: a chat's prompt and
    ``max_output``, or an embedding job's inputs (``{"input": [...]}``) and no output."""
    inputs = request.get("input")
    if isinstance(inputs, list):
        return estimate_input_tokens(inputs), 0
    messages = request.get("messages")
    tools = request.get("tools")
    prompt = estimate_prompt_tokens(
        messages if isinstance(messages, list) else [], tools if isinstance(tools, list) else None
    )
    max_tokens = request.get("max_tokens")
    return prompt, max_output(max_tokens if isinstance(max_tokens, int) else None, model_max_output)


def max_output(max_tokens: int | None, model_max_output: int) -> int:
    """Output tokens a call may produce, as providers reserve them against tpm and otpm.

    The request's ``max_tokens`` when given (even above the model's limit: the provider
    reserves what was asked), else the model's ``max_output_tokens``.
    """
    return model_max_output if max_tokens is None else max_tokens
