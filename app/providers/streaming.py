"""A streaming chat call: the provider's deltas handed on as they arrive, the completion at
the end — what ``send`` + ``parse_response`` are for a whole answer.

    streamed = stream_chat(client, adapter, call, timeout=30.0, on_start=..., on_deltas=...)
    streamed.completion, streamed.http_status

``on_start`` runs once the provider accepted the call (a success status), before any delta;
``on_deltas`` runs after each network read that completed deltas, with all of them — unless
the same read also carried the stream's failure: those deltas are not handed on, so what was
handed on never outruns the failure by more than it had to. Failures
are the taxonomy's, as for a whole answer: an error status is classified from its body, an
error event inside a stream after its 200 the same way, and a stream that is cut, malformed
or late raises ``ServerFailed`` or ``TimedOut``. A server that answers a stream request with
one JSON body (some OpenAI-compatible servers ignore ``stream``) is read as a whole answer,
delivered as deltas in one go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import httpx

from app.providers.transport import open_stream
from app.providers.types import Adapter, ChatCall, Completion, Delta, deltas_of

WHOLE_ANSWER_MEDIA = "application/json"


@dataclass(frozen=True, slots=True)
class Streamed:
    """A streamed call that succeeded: its completion and the status it came with."""

    completion: Completion
    http_status: int


def stream_chat(
    client: httpx.Client,
    adapter: Adapter,
    call: ChatCall,
    *,
    timeout: float,
    on_start: Callable[[], None],
    on_deltas: Callable[[list[Delta]], None],
) -> Streamed:
    """Make ``call`` with streaming on and hand its deltas on as they arrive."""
    request = adapter.build_request(replace(call, stream=True))
    with open_stream(client, request, timeout=timeout) as stream:
        if not stream.is_success or stream.media_type == WHOLE_ANSWER_MEDIA:
            response = stream.whole()
            completion = adapter.parse_response(response)  # raises for an error status
            on_start()
            whole = deltas_of(completion)
            if whole:
                on_deltas(whole)
            return Streamed(completion, response.status_code)
        reader = adapter.stream_reader(stream.headers)
        on_start()
        for lines in stream.lines():
            deltas = [delta for line in lines for delta in reader.feed(line)]
            if deltas:
                on_deltas(deltas)
        last = reader.end()
        if last:
            on_deltas(last)
        return Streamed(reader.finish(), stream.status_code)
