"""The transport boundary: httpx failures in, taxonomy errors out; per-attempt timeouts."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from app.providers import ProviderError, ServerFailed, TimedOut, get_adapter, send, send_async

SECRET_KEY = "sk-transport-0123456789-SECRET"

Handler = Callable[[httpx.Request], httpx.Response]


def request() -> httpx.Request:
    return httpx.Request(
        "POST",
        "https://provider.test/v1/chat/completions",
        headers={"authorization": f"Bearer {SECRET_KEY}"},
        content=b"{}",
    )


def send_with(handler: Handler, *, timeout: float = 5.0) -> httpx.Response:
    with httpx.Client(transport=httpx.MockTransport(handler), timeout=60.0) as client:
        return send(client, request(), timeout=timeout)


def raising(exc_type: type[httpx.HTTPError], text: str = "boom") -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if issubclass(exc_type, httpx.RequestError):
            raise exc_type(text, request=request)
        raise exc_type(text)

    return handler


@pytest.mark.parametrize(
    ("exc_type", "kind", "wording"),
    [
        (httpx.ReadTimeout, "timeout", "waiting for the provider's response"),
        (httpx.ConnectTimeout, "timeout", "connecting"),
        (httpx.WriteTimeout, "timeout", "sending"),
        (httpx.PoolTimeout, "timeout", "free connection"),
        (httpx.ConnectError, "server_error", "could not connect"),
        (httpx.RemoteProtocolError, "server_error", "dropped the connection"),
        (httpx.ReadError, "server_error", "while reading"),
        (httpx.WriteError, "server_error", "while sending"),
        (httpx.ProxyError, "server_error", "transport failure"),
        (httpx.UnsupportedProtocol, "server_error", "transport failure"),
        (httpx.DecodingError, "server_error", "could not be decoded"),
    ],
)
def test_httpx_failures_become_taxonomy_errors(
    exc_type: type[httpx.HTTPError], kind: str, wording: str
) -> None:
    with pytest.raises(ProviderError) as caught:
        send_with(raising(exc_type))
    error = caught.value
    assert error.kind == kind
    assert wording in error.message
    assert not isinstance(error, httpx.HTTPError)
    assert isinstance(error.__cause__, exc_type)


def test_transport_messages_never_carry_the_key() -> None:
    with pytest.raises(ServerFailed) as caught:
        send_with(raising(httpx.ConnectError, f"refused while sending Bearer {SECRET_KEY}"))
    assert SECRET_KEY not in caught.value.message
    assert SECRET_KEY not in repr(caught.value)
    assert "[redacted]" in caught.value.message


def test_the_per_request_timeout_overrides_the_clients() -> None:
    seen: list[dict[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={})

    send_with(handler, timeout=2.5)
    assert seen == [{"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}]


class TricklingBody(httpx.SyncByteStream):
    """A body that keeps sending, slowly: each read is quick, the whole is not."""

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(20):
            time.sleep(0.02)
            yield b" "


def test_a_trickling_body_still_hits_the_attempt_deadline() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=TricklingBody())

    started = time.monotonic()
    with pytest.raises(TimedOut):
        send_with(handler, timeout=0.05)
    assert time.monotonic() - started < 0.3


def test_the_body_is_read_inside_send() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(b'{"ok": true}'))

    response = send_with(handler)
    assert response.json() == {"ok": True}


def test_a_compressed_body_is_decoded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-encoding": "gzip"},
            stream=httpx.ByteStream(gzip.compress(b'{"ok": true}')),
        )

    assert send_with(handler).json() == {"ok": True}


def test_a_corrupt_compressed_body_is_a_server_failure() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip")
        )

    with pytest.raises(ServerFailed):
        send_with(handler)


def test_garbage_comes_back_as_a_response_and_parses_as_server_failure() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(b"\x00\xffgarbage"))

    response = send_with(handler)  # the transport does not judge bodies
    with pytest.raises(ServerFailed) as caught:
        get_adapter("openai").parse_response(response)
    assert caught.value.message.startswith("malformed response body")


def test_error_statuses_are_returned_for_the_adapter_to_classify() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, headers={"retry-after": "7"}, json={"error": {"message": "slow"}}
        )

    response = send_with(handler)
    assert response.status_code == 429
    with pytest.raises(ProviderError) as caught:
        get_adapter("openai").parse_response(response)
    assert (caught.value.kind, caught.value.retry_after) == ("rate_limit", 7.0)


# -- the async twin --------------------------------------------------------------------------


def send_async_with(handler: Handler, *, timeout: float = 5.0) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await send_async(client, request(), timeout=timeout)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("exc_type", "kind"),
    [(httpx.ReadTimeout, "timeout"), (httpx.ConnectError, "server_error")],
)
def test_async_failures_become_taxonomy_errors(exc_type: type[httpx.HTTPError], kind: str) -> None:
    with pytest.raises(ProviderError) as caught:
        send_async_with(raising(exc_type))
    assert caught.value.kind == kind


def test_async_send_reads_the_body_and_honours_the_timeout() -> None:
    seen: list[dict[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, stream=httpx.ByteStream(b'{"ok": true}'))

    assert send_async_with(handler, timeout=1.5).json() == {"ok": True}
    assert seen == [{"connect": 1.5, "read": 1.5, "write": 1.5, "pool": 1.5}]


def test_the_provider_client_never_keeps_cookies() -> None:
    from app.providers.transport import provider_client, send

    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "__cf_bm=abc; Path=/"}, json={})

    client = provider_client(max_connections=2, timeout=5, transport=httpx.MockTransport(handler))
    for _ in range(2):
        send(client, httpx.Request("POST", "https://api.example.com/v1/x"), timeout=5)
    assert seen == [None, None]
    assert len(client.cookies.jar) == 0
