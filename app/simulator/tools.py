"""The tool calls simulated models make: which tool, and with what arguments.

A request that offers tools gets a call to one of them — the one it forces, else the first —
unless it says not to call any (``none``) or its conversation already ends with a tool's
result, when the model answers in text as usual (so an agent loop ends). Each format reads
its own ``tools`` / ``tool_choice`` shapes into ``ToolSpec`` values and ``choose_tool``
decides. Arguments follow the tool's JSON schema: every property gets a value of its type
(a word of the reply vocabulary for strings, a small integer for numbers, the first value of
an ``enum``), derived from the prompt, so the same prompt makes the same call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

ARGUMENT_PIECE_CHARS = 8  # how much of the arguments' JSON text one stream delta carries
_WORDS = ("paris", "tokyo", "lima", "oslo", "cairo", "quito", "rome", "delhi")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the request offers: its name and its parameters' JSON schema."""

    name: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SimToolCall:
    """The call a simulated model makes; ``arguments`` is JSON text."""

    name: str
    arguments: str

    @property
    def arguments_object(self) -> Any:
        return orjson.loads(self.arguments)

    def pieces(self) -> list[str]:
        """The arguments cut into stream fragments that concatenate back to them."""
        text = self.arguments
        return [
            text[i : i + ARGUMENT_PIECE_CHARS] for i in range(0, len(text), ARGUMENT_PIECE_CHARS)
        ]


def spec_of(name: Any, parameters: Any) -> ToolSpec | None:
    """A ``ToolSpec`` from a format's fields, or None if they are not a usable declaration."""
    if not isinstance(name, str) or not name:
        return None
    return ToolSpec(name, parameters if isinstance(parameters, dict) else {})


def choose_tool(
    offered: Sequence[ToolSpec | None], *, forced: str | None = None, answered: bool = False
) -> ToolSpec | None:
    """The tool to call: none offered or the last message a tool's result means none; a
    forced name that is not offered means none too (a real provider would refuse it)."""
    tools = [tool for tool in offered if tool is not None]
    if not tools or answered:
        return None
    if forced is None:
        return tools[0]
    return next((tool for tool in tools if tool.name == forced), None)


def make_call(tool: ToolSpec, digest: int) -> SimToolCall:
    """The call to ``tool`` for a prompt with this digest."""
    properties = tool.parameters.get("properties")
    values: dict[str, Any] = {}
    if isinstance(properties, dict):
        for position, (name, schema) in enumerate(properties.items()):
            values[str(name)] = _value(schema, digest + position)
    return SimToolCall(tool.name, orjson.dumps(values).decode())


def _value(schema: Any, seed: int) -> Any:
    if not isinstance(schema, dict):
        return None
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if kind == "string":
        return _WORDS[seed % len(_WORDS)]
    if kind in ("integer", "number"):
        return seed % 100
    if kind == "boolean":
        return seed % 2 == 0
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return None
