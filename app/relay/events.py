"""What a worker tells the API about a streaming job: its attempts' events, in order.

Each streaming job has one Redis stream (``sb:stream:<job id>``), appended to by the worker
running it and read from its start by the API process relaying it, so a reader that arrives
late misses nothing. An entry is one event of one attempt:

    AttemptStarted   the provider accepted the call: the model and provider serving it
    AttemptDeltas    pieces of text and tool calls, in order, as the provider sent them
    AttemptDone      the provider finished its answer (the job row says once it is recorded)
    AttemptFailed    the attempt failed: its error class and message
    JobEnded         the job's end is recorded in Postgres (by this attempt): read its row

``JobEnded`` is also all the stream of a job answered on the request without streaming
carries: the caller waiting for it reads the row the moment it is written instead of polling.

An attempt is named by its claim and its number (``AttemptId``): the claim token tells apart
two workers that held the job one after the other (a lease that expired), the number the
attempts of one claim, so a reader never mixes the pieces of two attempts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from app.constants import STREAM_PREFIX
from app.providers.types import Delta, TextDelta, ToolCallDelta

log = logging.getLogger(__name__)

FIELD = b"e"  # the one field of a stream entry: the event as JSON


@dataclass(frozen=True, slots=True)
class AttemptId:
    """One attempt of a job: the claim it ran under and its number (1 for the first)."""

    claim: int
    number: int


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    attempt: AttemptId
    model: str  # the gateway's model id
    provider: str


@dataclass(frozen=True, slots=True)
class AttemptDeltas:
    attempt: AttemptId
    deltas: tuple[Delta, ...]


@dataclass(frozen=True, slots=True)
class AttemptDone:
    attempt: AttemptId


@dataclass(frozen=True, slots=True)
class AttemptFailed:
    attempt: AttemptId
    error_class: str
    message: str


@dataclass(frozen=True, slots=True)
class JobEnded:
    attempt: AttemptId
    status: str  # succeeded | failed


Event = AttemptStarted | AttemptDeltas | AttemptDone | AttemptFailed | JobEnded


def stream_key(job_id: str) -> str:
    """The Redis stream of ``job_id``'s events."""
    return STREAM_PREFIX + job_id


def encode(event: Event) -> bytes:
    head: dict[str, Any] = {"c": event.attempt.claim, "n": event.attempt.number}
    body: dict[str, Any]
    match event:
        case AttemptStarted():
            body = {"k": "start", "model": event.model, "provider": event.provider}
        case AttemptDeltas():
            body = {"k": "deltas", "d": [_delta_json(delta) for delta in event.deltas]}
        case AttemptDone():
            body = {"k": "done"}
        case AttemptFailed():
            body = {"k": "fail", "class": event.error_class, "message": event.message}
        case JobEnded():
            body = {"k": "end", "status": event.status}
    return orjson.dumps(head | body)


def decode(raw: bytes | None) -> Event | None:
    """The event in an entry's field; ``None`` (logged) for an entry that is not one."""
    try:
        data = orjson.loads(raw or b"")
        attempt = AttemptId(int(data["c"]), int(data["n"]))
        kind = data["k"]
        if kind == "start":
            return AttemptStarted(attempt, str(data["model"]), str(data["provider"]))
        if kind == "deltas":
            return AttemptDeltas(attempt, tuple(_delta(item) for item in data["d"]))
        if kind == "done":
            return AttemptDone(attempt)
        if kind == "fail":
            return AttemptFailed(attempt, str(data["class"]), str(data["message"]))
        if kind == "end":
            return JobEnded(attempt, str(data["status"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        pass
    log.warning("skipped a stream entry that is not an event: %.120r", raw)
    return None


def _delta_json(delta: Delta) -> dict[str, Any]:
    if isinstance(delta, TextDelta):
        return {"t": delta.text}
    return {"i": delta.index, "id": delta.id, "name": delta.name, "a": delta.arguments}


def _delta(item: dict[str, Any]) -> Delta:
    if "t" in item:
        return TextDelta(str(item["t"]))
    return ToolCallDelta(
        int(item["i"]),
        None if item.get("id") is None else str(item["id"]),
        None if item.get("name") is None else str(item["name"]),
        str(item.get("a", "")),
    )
