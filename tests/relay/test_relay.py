"""The relay on a real Redis: what a worker's streaming call publishes, and what an API reader
gets back from the start of the stream — also when it arrives after everything was written."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from app.constants import STREAM_TTL_S
from app.providers import ChatCall, ProviderError, TextDelta, ToolCallDelta, get_adapter
from app.relay.events import (
    AttemptDeltas,
    AttemptDone,
    AttemptFailed,
    AttemptId,
    AttemptStarted,
    Event,
    decode,
    encode,
    stream_key,
)
from app.relay.publisher import StreamPublisher, wants_stream
from app.relay.subscriber import StreamSubscriber

WIRE = Path(__file__).resolve().parents[1] / "fixtures" / "wire"
CALL = ChatCall(base_url="https://provider.test/v1", model="m", messages=[{"role": "user"}])
FIRST = AttemptId(claim=3, number=1)
SSE = {"content-type": "text/event-stream"}


@pytest.fixture
def client(lone_redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(lone_redis_url)
    connection.flushdb()
    yield connection
    connection.close()


def provider(status: int, lines: list[str], headers: dict[str, str] | None = None) -> httpx.Client:
    body = "".join(line + "\n" for line in lines).encode()
    return httpx.Client(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(status, headers=headers or SSE, content=body)
        )
    )


def publish(
    publisher: StreamPublisher, http: httpx.Client, job_id: str = "job_1", wire: str = "openai"
) -> None:
    publisher.call(
        http,
        get_adapter(wire),
        CALL,
        timeout=5.0,
        job_id=job_id,
        attempt=FIRST,
        model="sim-gpt-mini",
        provider="sim-openai",
    )


def read_all(url: str, job_id: str) -> list[Event]:
    async def read() -> list[Event]:
        subscriber = StreamSubscriber.from_url(url)
        try:
            subscription = subscriber.subscribe(job_id)
            events: list[Event] = []
            while batch := await subscription.read(0.05):
                events += batch
            return events
        finally:
            await subscriber.close()

    return asyncio.run(read())


def test_every_event_survives_its_encoding() -> None:
    events: list[Event] = [
        AttemptStarted(FIRST, "sim-gpt-mini", "sim-openai"),
        AttemptDeltas(FIRST, (TextDelta("Hel"), ToolCallDelta(0, "call_1", "f", '{"a"'))),
        AttemptDeltas(FIRST, (ToolCallDelta(0, arguments=": 1}"),)),
        AttemptDone(FIRST),
        AttemptFailed(AttemptId(4, 2), "overloaded", "Overloaded"),
    ]
    assert [decode(encode(event)) for event in events] == events


def test_an_entry_that_is_not_an_event_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert decode(b'{"k": "deltas"}') is None
        assert decode(b"not json") is None
    assert "not an event" in caplog.text


def test_a_streaming_call_publishes_its_start_deltas_and_end_for_a_late_reader(
    client: redis.Redis, lone_redis_url: str
) -> None:
    recorded = json.loads((WIRE / "openai_stream_ok.json").read_text())
    with provider(200, recorded["body"]) as http:
        publish(StreamPublisher(client), http)
    events = read_all(lone_redis_url, "job_1")  # everything was written before it came

    assert events[0] == AttemptStarted(FIRST, "sim-gpt-mini", "sim-openai")
    assert events[-1] == AttemptDone(FIRST)
    middle = events[1:-1]
    assert all(isinstance(e, AttemptDeltas) and e.attempt == FIRST for e in middle)
    text = "".join(d.text for e in middle for d in e.deltas if isinstance(d, TextDelta))  # type: ignore[union-attr]
    assert text == recorded["expect"]["text"]
    assert 0 < client.ttl(stream_key("job_1")) <= STREAM_TTL_S


def test_a_failure_after_the_200_is_published_after_what_came_before(
    client: redis.Redis, lone_redis_url: str
) -> None:
    head = fixture_lines("anthropic_stream_ok")[:14]  # message_start ... two text deltas
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    tail = ["event: error", f"data: {json.dumps(error)}", ""]
    chunks = ["\n".join(head) + "\n\n", "\n".join(tail) + "\n"]
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers=SSE, stream=Pieces(chunks))
    )
    with httpx.Client(transport=transport) as http, pytest.raises(ProviderError):
        publish(StreamPublisher(client), http, wire="anthropic")
    events = read_all(lone_redis_url, "job_1")

    assert isinstance(events[0], AttemptStarted)
    assert any(isinstance(e, AttemptDeltas) for e in events)
    assert events[-1] == AttemptFailed(FIRST, "overloaded", "anthropic: Overloaded")


def test_an_error_status_publishes_only_the_failure(
    client: redis.Redis, lone_redis_url: str
) -> None:
    body = json.loads((WIRE / "openai_error_server_500.json").read_text())["body"]
    json_headers = {"content-type": "application/json"}
    with provider(500, [json.dumps(body)], json_headers) as http, pytest.raises(ProviderError):
        publish(StreamPublisher(client), http)
    (event,) = read_all(lone_redis_url, "job_1")
    assert isinstance(event, AttemptFailed)
    assert event.error_class == "server_error"


def test_a_redis_that_fails_does_not_fail_the_call(caplog: pytest.LogCaptureFixture) -> None:
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    recorded = json.loads((WIRE / "openai_stream_ok.json").read_text())
    with provider(200, recorded["body"]) as http, caplog.at_level(logging.WARNING):
        streamed = StreamPublisher(unreachable).call(
            http,
            get_adapter("openai"),
            CALL,
            timeout=5.0,
            job_id="job_2",
            attempt=FIRST,
            model="m",
            provider="p",
        )
    assert streamed.completion.text == recorded["expect"]["text"]
    assert caplog.text.count("not relayed any more") == 1  # tried once, then left alone


def test_only_single_jobs_that_ask_for_it_stream() -> None:
    assert wants_stream({"stream": True}, None)
    assert not wants_stream({"stream": True}, "batch_1")  # batch lines never stream
    assert not wants_stream({}, None)


def test_a_reader_blocks_until_an_event_comes(client: redis.Redis, lone_redis_url: str) -> None:
    async def scenario() -> tuple[list[Event], list[Event]]:
        subscriber = StreamSubscriber.from_url(lone_redis_url)
        try:
            subscription = subscriber.subscribe("job_3")
            before = await subscription.read(0.05)
            client.xadd(stream_key("job_3"), {b"e": encode(AttemptDone(FIRST))})
            after = await subscription.read(5.0)
            return before, after
        finally:
            await subscriber.close()

    before, after = asyncio.run(scenario())
    assert (before, after) == ([], [AttemptDone(FIRST)])


def fixture_lines(name: str) -> list[str]:
    lines: list[str] = json.loads((WIRE / f"{name}.json").read_text())["body"]
    return lines


class Pieces(httpx.SyncByteStream):
    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            yield piece.encode()
