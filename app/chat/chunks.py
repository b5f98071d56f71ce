"""OpenAI's ``chat.completion.chunk`` server-sent events, written for one answer.

Every chunk of an answer shares its ``id`` (``chatcmpl-<job id>``), ``created`` and ``model``
(the gateway's id of the model answering); choice 0 carries the delta:

    role        {"role": "assistant", "content": ""}, first
    text        {"content": "..."}, one chunk per delta the provider sent
    tool call   {"tool_calls": [{"index", "id", "type", "function": {"name", "arguments"}}]}
                for a call's first piece, then {"tool_calls": [{"index", "function":
                {"arguments"}}]} for each further fragment of its arguments
    finish      {} with ``finish_reason``
    usage       ``choices: []`` and ``usage`` (with ``stream_options.include_usage``)
    [DONE]

The last chunk before ``[DONE]`` also carries ``x_switchboard``: the job id, the model and
provider that served it, its attempts and its exact cost — what the ``x-switchboard-*``
headers of a whole answer say, known only once the stream has been sent. A stream that
cannot finish ends with OpenAI's error event instead: ``data: {"error": {...}}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from app.db.tables import JobRow
from app.ledger.cost import format_usd
from app.providers.types import Delta, TextDelta

DONE = b"data: [DONE]\n\n"
EXTENSION = "x_switchboard"


def event(payload: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``payload``."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def served(job: JobRow) -> dict[str, Any]:
    """What the ``x_switchboard`` field says of a finished job."""
    extension = {
        "job_id": job.id,
        "model": job.served_model,
        "provider": job.served_provider,
        "attempts": job.attempt_count,
        "cost_usd": format_usd(job.cost_usd),
    }
    if job.cache is not None:  # the response cache took part: "exact:hit", ...
        extension["cache"] = job.cache
    return extension


class ChunkWriter:
    """The chunks of one answer, as bytes ready to send."""

    def __init__(self, completion_id: str, created: int, model: str) -> None:
        self._head = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
        }

    def role(self) -> bytes:
        return self._choice({"role": "assistant", "content": ""})

    def deltas(self, deltas: Iterable[Delta]) -> bytes:
        return b"".join(self._choice(_delta_fields(delta)) for delta in deltas)

    def finish(self, reason: str | None, extension: dict[str, Any] | None = None) -> bytes:
        choice = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}
        return self._chunk([choice], extension)

    def usage(self, usage: dict[str, Any], extension: dict[str, Any] | None = None) -> bytes:
        return self._chunk([], extension, usage=usage)

    def _choice(self, fields: dict[str, Any]) -> bytes:
        choice = {"index": 0, "delta": fields, "logprobs": None, "finish_reason": None}
        return self._chunk([choice], None)

    def _chunk(
        self, choices: list[dict[str, Any]], extension: dict[str, Any] | None, **extra: Any
    ) -> bytes:
        payload = {**self._head, "choices": choices, **extra}
        if extension is not None:
            payload[EXTENSION] = extension
        return event(payload)


def _delta_fields(delta: Delta) -> dict[str, Any]:
    if isinstance(delta, TextDelta):
        return {"content": delta.text}
    call: dict[str, Any] = {"index": delta.index}
    if delta.id is not None or delta.name is not None:  # the call's first piece names it
        call |= {"id": delta.id, "type": "function"}
        call["function"] = {"name": delta.name, "arguments": delta.arguments}
    else:
        call["function"] = {"arguments": delta.arguments}
    return {"tool_calls": [call]}
