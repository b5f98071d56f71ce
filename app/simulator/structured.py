"""Structured output: the JSON a simulated model answers a ``response_format`` request with.

A request asking for ``json_object`` gets ``{"answer": "<the reply's words>"}``; one asking
for ``json_schema`` gets an object with every property of the schema, each a value of its
type (the reply's words for strings, small integers derived from the prompt for numbers, the
first value of an ``enum``). The same prompt gets the same JSON, like every other reply. A
model configured with ``follows_response_format = false`` ignores the request and answers in
prose, as older models do — what response validators exist to catch. JSON longer than
``max_tokens`` (at the simulator's 4 bytes a token) is cut there and no longer parses, as a
real model's would.

The JSON text is carried as the reply's words (split at its spaces, which it then joins back
with), so every format renders and streams it unchanged and counts one token per piece.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from app.simulator.tokens import BYTES_PER_TOKEN, Finish, Reply, text_tokens

ANSWER = "answer"  # the one property of a json_object reply


def requested_schema(response_format: Any) -> dict[str, Any] | None:
    """The schema asked for (``{}`` for any JSON object), or None for a text answer."""
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return {}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return schema if isinstance(schema, dict) else {}
    return None


def structured(reply: Reply, schema: dict[str, Any], *, max_tokens: int, digest: int) -> Reply:
    """``reply`` as the JSON following ``schema``; a tool call or a filtered reply as it is."""
    if reply.tool_call is not None or reply.finish is Finish.CONTENT_FILTER:
        return reply
    sentence = " ".join(reply.words)
    document = _object(schema, sentence, digest) if schema.get("properties") else None
    text = orjson.dumps(document or {ANSWER: sentence}).decode()
    finish = Finish.STOP
    if text_tokens(text) > max_tokens:  # cut where its tokens run out, mid-document
        text, finish = text[: max_tokens * BYTES_PER_TOKEN], Finish.LENGTH
    return replace(reply, words=tuple(text.split(" ")), finish=finish)


def _value(schema: Any, sentence: str, seed: int) -> Any:
    if not isinstance(schema, dict):
        return sentence
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind in ("integer", "number"):
        return seed % 100
    if kind == "boolean":
        return seed % 2 == 0
    if kind == "array":
        return [_value(schema.get("items"), sentence, seed)] if schema.get("items") else []
    if kind == "object":
        return _object(schema, sentence, seed)
    if kind == "null":
        return None
    return sentence


def _object(schema: dict[str, Any], sentence: str, seed: int) -> dict[str, Any]:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    return {
        str(name): _value(spec, sentence, seed + position)
        for position, (name, spec) in enumerate(properties.items())
    }
