"""OpenAI's streamed answers as server-sent events, written for one answer: the chat
endpoint's ``chat.completion.chunk`` (``ChunkWriter``) and the legacy completions endpoint's
``text_completion`` (``TextChunkWriter``: no role chunk, the text in ``choices[].text``, no
tool calls).

Every chunk of an answer shares its ``id`` (``chatcmpl-<job id>``; ``cmpl-<job id>`` for text),
``created`` and ``model`` (the gateway's id of the model answering); choice 0 carries the delta:

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

from collections.abc import Iterable, Iterator
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
    """The ``chat.completion.chunk`` events of one answer, as bytes ready to send."""

    OBJECT = "chat.completion.chunk"

    def __init__(self, completion_id: str, created: int, model: str) -> None:
        self._head = {
            "id": completion_id,
            "object": self.OBJECT,
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

    def end(
        self,
        reason: str | None,
        usage: dict[str, Any] | None,
        extension: dict[str, Any] | None = None,
    ) -> Iterator[bytes]:
        """The last chunks of an answer: its finish, its usage if asked for, ``[DONE]``;
        ``extension`` (``x_switchboard``) rides on the last of them."""
        if usage is None:
            yield self.finish(reason, extension)
        else:
            yield self.finish(reason)
            yield self.usage(usage, extension)
        yield DONE

    def whole(
        self,
        deltas: list[Delta],
        reason: str | None,
        usage: dict[str, Any] | None,
        extension: dict[str, Any] | None = None,
    ) -> Iterator[bytes]:
        """A finished answer as its chunks: the role, ``deltas`` (the content in one, each
        tool call whole), then its end."""
        if role := self.role():
            yield role
        if deltas:
            yield self.deltas(deltas)
        yield from self.end(reason, usage, extension)

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


class TextChunkWriter(ChunkWriter):
    """The ``text_completion`` events of one answer: each piece of text in ``choices[].text``;
    no role chunk, and no tool calls (the endpoint takes no tools)."""

    OBJECT = "text_completion"

    def role(self) -> bytes:
        return b""

    def deltas(self, deltas: Iterable[Delta]) -> bytes:
        return b"".join(self._text(d.text, None) for d in deltas if isinstance(d, TextDelta))

    def finish(self, reason: str | None, extension: dict[str, Any] | None = None) -> bytes:
        return self._chunk([_text_choice("", reason)], extension)

    def _text(self, text: str, reason: str | None) -> bytes:
        return self._chunk([_text_choice(text, reason)], None)


def _text_choice(text: str, reason: str | None) -> dict[str, Any]:
    return {"text": text, "index": 0, "logprobs": None, "finish_reason": reason}


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
