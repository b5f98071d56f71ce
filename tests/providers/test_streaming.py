"""``stream_chat``: the streaming call through the one transport, over ``httpx.MockTransport``.

Deltas are handed on while the body is still arriving, whatever the read boundaries; errors
before and after the 200 are the taxonomy's; the attempt's timeout bounds the whole stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.providers import (
    ChatCall,
    Delta,
    ProviderError,
    RateLimited,
    ServerFailed,
    Streamed,
    TextDelta,
    TimedOut,
    get_adapter,
    stream_chat,
)

WIRE = Path(__file__).resolve().parents[1] / "fixtures" / "wire"
SECRET_KEY = "sk-streaming-0123456789-SECRET"
BASE = "https://provider.test/v1"
CALL = ChatCall(
    base_url=BASE, model="m", messages=[{"role": "user", "content": "Hi"}], api_key=SECRET_KEY
)
SSE = {"content-type": "text/event-stream"}


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((WIRE / f"{name}.json").read_text())
    return data


def body_of(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


class Chunked(httpx.SyncByteStream):
    """A body sent in pieces; ``before_each`` runs before each piece is handed over."""

    def __init__(self, pieces: list[bytes], before_each: Callable[[int], None] | None = None):
        self.pieces = pieces
        self.before_each = before_each

    def __iter__(self) -> Iterator[bytes]:
        for i, piece in enumerate(self.pieces):
            if self.before_each is not None:
                self.before_each(i)
            yield piece


class Recorder:
    def __init__(self) -> None:
        self.started = 0
        self.batches: list[list[Delta]] = []

    def start(self) -> None:
        self.started += 1

    def deltas(self, deltas: list[Delta]) -> None:
        self.batches.append(deltas)

    @property
    def text(self) -> str:
        return "".join(d.text for b in self.batches for d in b if isinstance(d, TextDelta))


def run(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    wire: str = "openai",
    timeout: float = 5.0,
    recorder: Recorder | None = None,
) -> Streamed:
    recorder = recorder or Recorder()
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        return stream_chat(
            client,
            get_adapter(wire),
            CALL,
            timeout=timeout,
            on_start=recorder.start,
            on_deltas=recorder.deltas,
        )


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
@pytest.mark.parametrize(
    "name",
    ["openai_stream_ok", "anthropic_stream_tool_use", "ollama_stream_ok", "gemini_stream_ok"],
)
def test_any_read_boundaries_give_the_same_deltas_and_completion(name: str, size: int) -> None:
    recorded = fixture(name)
    body = body_of(recorded["body"])
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    recorder = Recorder()
    streamed = run(
        lambda request: httpx.Response(200, headers=recorded["headers"], stream=Chunked(pieces)),
        wire=recorded["provider"],
        recorder=recorder,
    )
    whole = get_adapter(recorded["provider"]).parse_stream(
        recorded["body"], headers=httpx.Headers(recorded["headers"])
    )
    assert streamed == Streamed(whole, 200)
    assert recorder.started == 1
    assert recorder.text == (whole.text or "")


def test_deltas_are_handed_on_before_the_rest_of_the_body_is_read() -> None:
    lines = fixture("openai_stream_ok")["body"]
    events = [body_of(lines[i : i + 2]) for i in range(0, len(lines), 2)]
    recorder = Recorder()
    seen_when_asked: list[int] = []

    def before_each(i: int) -> None:
        seen_when_asked.append(len(recorder.batches))

    run(
        lambda request: httpx.Response(200, headers=SSE, stream=Chunked(events, before_each)),
        recorder=recorder,
    )
    # The third event is asked for only once the second one's delta went out (the first is the
    # role chunk, which carries no text).
    assert seen_when_asked[2] >= 1
    assert seen_when_asked[-1] >= len(events) - 4
    assert len(recorder.batches) > 10


def test_the_request_asks_for_a_stream() -> None:
    sent: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(
            200, headers=SSE, content=body_of(fixture("openai_stream_ok")["body"])
        )

    run(handler)
    assert sent[0]["stream"] is True
    assert sent[0]["stream_options"] == {"include_usage": True}


def test_an_error_status_is_classified_before_any_delta() -> None:
    recorder = Recorder()
    with pytest.raises(RateLimited) as raised:
        run(
            lambda request: httpx.Response(
                429,
                headers={"retry-after": "7"},
                json=fixture("openai_error_rate_limit_429")["body"],
            ),
            recorder=recorder,
        )
    assert raised.value.retry_after == 7.0
    assert (recorder.started, recorder.batches) == (0, [])


OVERLOADED = {"error": {"message": "The server is overloaded", "type": "overloaded_error"}}


def test_an_error_after_the_200_comes_after_the_deltas_before_it() -> None:
    content = {"choices": [{"index": 0, "delta": {"content": "Hel"}}]}
    reads = [
        body_of([f"data: {json.dumps(content)}", ""]),
        body_of([f"data: {json.dumps(OVERLOADED)}", ""]),
    ]
    recorder = Recorder()
    with pytest.raises(ProviderError) as raised:
        run(
            lambda request: httpx.Response(200, headers=SSE, stream=Chunked(reads)),
            recorder=recorder,
        )
    assert raised.value.kind == "overloaded"
    assert recorder.text == "Hel"
    assert raised.value.completion is not None
    assert raised.value.completion.text == "Hel"


def test_deltas_read_together_with_an_error_are_not_handed_on() -> None:
    content = {"choices": [{"index": 0, "delta": {"content": "Hel"}}]}
    lines = [f"data: {json.dumps(content)}", "", f"data: {json.dumps(OVERLOADED)}", ""]
    recorder = Recorder()
    with pytest.raises(ProviderError):
        run(
            lambda request: httpx.Response(200, headers=SSE, content=body_of(lines)),
            recorder=recorder,
        )
    # Nobody saw them: for the relay this failed before its first delta.
    assert (recorder.started, recorder.batches) == (1, [])


def test_a_whole_json_answer_to_a_stream_request_is_one_delta() -> None:
    body = fixture("openai_chat_tool_call")["body"]
    recorder = Recorder()
    streamed = run(lambda request: httpx.Response(200, json=body), recorder=recorder)
    (call,) = streamed.completion.tool_calls
    assert recorder.started == 1
    ((delta,),) = recorder.batches
    assert (delta.index, delta.id, delta.name, delta.arguments) == (  # type: ignore[union-attr]
        0,
        call.id,
        call.name,
        call.arguments,
    )


def test_a_stream_cut_mid_way_is_a_server_failure() -> None:
    lines = fixture("openai_stream_ok")["body"][:6]
    with pytest.raises(ServerFailed) as raised:
        run(lambda request: httpx.Response(200, headers=SSE, content=body_of(lines)))
    assert "stream ended before" in raised.value.message


def test_a_connection_dropped_mid_stream_is_a_server_failure_not_an_httpx_error() -> None:
    lines = fixture("openai_stream_ok")["body"][:6]

    def dropped(i: int) -> None:
        if i == 1:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete body")

    recorder = Recorder()
    with pytest.raises(ServerFailed) as raised:
        run(
            lambda request: httpx.Response(
                200, headers=SSE, stream=Chunked([body_of(lines), b""], dropped)
            ),
            recorder=recorder,
        )
    assert "dropped the connection" in raised.value.message
    assert not isinstance(raised.value, httpx.HTTPError)
    assert recorder.text  # what arrived before the drop was handed on


def test_a_stream_that_keeps_trickling_is_cut_at_the_attempts_deadline() -> None:
    line = body_of(
        ["data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": "."}}]}), ""]
    )

    def slowly(i: int) -> None:
        time.sleep(0.01)

    recorder = Recorder()
    with pytest.raises(TimedOut) as raised:
        run(
            lambda request: httpx.Response(
                200, headers=SSE, stream=Chunked([line] * 10_000, slowly)
            ),
            timeout=0.2,
            recorder=recorder,
        )
    assert "did not finish its stream" in raised.value.message
    assert recorder.text  # it was streaming until then
    assert len(recorder.batches) < 10_000
