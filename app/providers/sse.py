"""Stream framings: Server-Sent Events (OpenAI, Anthropic, Gemini) and NDJSON (Ollama).

Both are incremental decoders: ``feed`` takes one raw text line — as the transport splits the
body while it arrives — and returns the events that line completed (usually none or one);
``flush`` returns what a stream that ends without its last separator still holds. Each
adapter folds the events' decoded JSON into deltas and, at the end, one ``Completion``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from app.providers.wire import decode_json, malformed

DONE_SENTINEL = "[DONE]"  # OpenAI-compatible streams end with "data: [DONE]"


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One dispatched event: its SSE ``event:`` name (if any) and its decoded JSON."""

    name: str | None
    data: Any


class Framing(Protocol):
    """How a stream's lines become events."""

    def feed(self, line: str) -> list[StreamEvent]: ...

    def flush(self) -> list[StreamEvent]: ...


class SSEDecoder:
    """The events of an SSE stream, in order, up to ``[DONE]``.

    Follows the WHATWG framing: ``field: value`` lines, ``:`` comments (OpenRouter's
    ``: OPENROUTER PROCESSING`` keep-alives) ignored, consecutive ``data:`` lines joined, a
    blank line dispatches. Lines after ``[DONE]`` are ignored. A payload that is not JSON
    raises ``ServerFailed`` (malformed).
    """

    __slots__ = ("_data", "_name", "done")

    def __init__(self) -> None:
        self._name: str | None = None
        self._data: list[str] = []
        self.done = False

    def feed(self, line: str) -> list[StreamEvent]:
        if self.done:
            return []
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return []
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._name = value
        elif field == "data":
            self._data.append(value)
        return []

    def flush(self) -> list[StreamEvent]:
        """A stream that ends without a trailing blank line still dispatches its last event."""
        return [] if self.done else self._dispatch()

    def _dispatch(self) -> list[StreamEvent]:
        name, data = self._name, self._data
        self._name, self._data = None, []
        if not data:
            return []
        payload = "\n".join(data)
        if payload.strip() == DONE_SENTINEL:
            self.done = True
            return []
        return [StreamEvent(name, _decode(payload))]


class NDJSONDecoder:
    """The decoded objects of a newline-delimited JSON stream, blank lines skipped."""

    __slots__ = ()

    def feed(self, line: str) -> list[StreamEvent]:
        line = line.strip()
        return [StreamEvent(None, _decode(line))] if line else []

    def flush(self) -> list[StreamEvent]:
        return []


def _decode(payload: str) -> Any:
    try:
        return decode_json(payload)
    except ValueError:
        raise malformed(payload) from None
