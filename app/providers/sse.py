"""Stream framings: Server-Sent Events (OpenAI, Anthropic, Gemini) and NDJSON (Ollama).

Both turn an iterable of raw text lines — as ``httpx.Response.iter_lines()`` yields them —
into decoded JSON payloads. Each adapter folds the payloads into one ``Completion``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from app.providers.wire import decode_json, malformed

DONE_SENTINEL = "[DONE]"  # OpenAI-compatible streams end with "data: [DONE]"


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One dispatched SSE event: its ``event:`` name (if any) and its decoded ``data:`` JSON."""

    name: str | None
    data: Any


def sse_events(lines: Iterable[str]) -> Iterator[StreamEvent]:
    """The events of an SSE stream, in order, stopping at ``[DONE]``.

    Follows the WHATWG framing: ``field: value`` lines, ``:`` comments (OpenRouter's
    keep-alives) ignored, consecutive ``data:`` lines joined, a blank line dispatches.
    A payload that is not JSON raises ``ServerFailed`` (malformed).
    """
    name: str | None = None
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                payload = "\n".join(data)
                if payload.strip() == DONE_SENTINEL:
                    return
                yield StreamEvent(name, _decode(payload))
            name, data = None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    if data:  # a stream that ends without a trailing blank line still dispatches
        payload = "\n".join(data)
        if payload.strip() != DONE_SENTINEL:
            yield StreamEvent(name, _decode(payload))


def ndjson_objects(lines: Iterable[str]) -> Iterator[Any]:
    """The decoded objects of a newline-delimited JSON stream, blank lines skipped."""
    for raw in lines:
        line = raw.strip()
        if line:
            yield _decode(line)


def _decode(payload: str) -> Any:
    try:
        return decode_json(payload)
    except ValueError:
        raise malformed(payload) from None
