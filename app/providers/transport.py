"""The one place a provider request touches the network.

``send`` / ``send_async`` put the per-attempt timeout on the request, read the whole body
before returning (so a body that stalls or trickles also runs into the deadline) and
translate every httpx exception at this single boundary, the way httpx's own
``map_httpcore_exceptions`` translates httpcore's:

    httpx.TimeoutException              -> TimedOut
    httpx.ConnectError                  -> ServerFailed  could not connect
    httpx.RemoteProtocolError           -> ServerFailed  connection dropped / bad HTTP
    httpx.ReadError, httpx.WriteError   -> ServerFailed  connection failed mid-exchange
    other httpx.TransportError          -> ServerFailed
    httpx.DecodingError                 -> ServerFailed  body not decodable (gzip, ...)
    any other httpx.HTTPError           -> ServerFailed

Status codes are not judged here: a 429 or 500 comes back as a response for the adapter's
``parse_response`` to classify. Nothing outside ``app.providers`` catches an httpx error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar
from typing import Any

import httpx

from app.providers.errors import ServerFailed, TimedOut
from app.providers.wire import request_secrets, safe_excerpt

_TIMEOUT_MESSAGES: dict[type[httpx.TimeoutException], str] = {
    httpx.ConnectTimeout: "timed out connecting to the provider",
    httpx.WriteTimeout: "timed out sending the request to the provider",
    httpx.ReadTimeout: "timed out waiting for the provider's response",
    httpx.PoolTimeout: "timed out waiting for a free connection to the provider",
}
_TRANSPORT_MESSAGES: tuple[tuple[type[httpx.HTTPError], str], ...] = (
    (httpx.ConnectError, "could not connect to the provider (refused, unreachable or unresolved)"),
    (httpx.RemoteProtocolError, "the provider dropped the connection or broke the HTTP protocol"),
    (httpx.ReadError, "the connection failed while reading the provider's response"),
    (httpx.WriteError, "the connection failed while sending the request"),
    (httpx.TransportError, "transport failure talking to the provider"),
    (httpx.DecodingError, "the provider's response body could not be decoded"),
    (httpx.HTTPError, "HTTP failure talking to the provider"),
)


class _NoCookies(CookieJar):
    """Providers' cookies are never kept: one client serves every key and tenant, and a cookie
    one key's response set must not ride along on another key's requests."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Any) -> None:
        return None


def provider_client(
    *, max_connections: int, timeout: float, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """The HTTP client a worker process shares between its slots for every provider call."""
    return httpx.Client(
        transport=transport,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        timeout=timeout,
        cookies=_NoCookies(),
        follow_redirects=False,
    )


def send(client: httpx.Client, request: httpx.Request, *, timeout: float) -> httpx.Response:
    """Send ``request`` and read its whole body within ``timeout`` seconds.

    Returns any response, whatever its status; raises ``TimedOut`` or ``ServerFailed``.
    """
    deadline = _apply_timeout(request, timeout)
    with _provider_errors(request):
        response = client.send(request, stream=True)
        if response.is_stream_consumed:  # handed back already read (in-memory transports)
            return response
        try:
            body = bytearray()
            for chunk in response.iter_raw():
                body += chunk
                _check_deadline(deadline, timeout)
        finally:
            response.close()
        return _buffered(response, request, bytes(body))


async def send_async(
    client: httpx.AsyncClient, request: httpx.Request, *, timeout: float
) -> httpx.Response:
    """``send`` for an ``httpx.AsyncClient``."""
    deadline = _apply_timeout(request, timeout)
    with _provider_errors(request):
        response = await client.send(request, stream=True)
        if response.is_stream_consumed:
            return response
        try:
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += chunk
                _check_deadline(deadline, timeout)
        finally:
            await response.aclose()
        return _buffered(response, request, bytes(body))


def _apply_timeout(request: httpx.Request, timeout: float) -> float:
    """Give ``request`` this attempt's timeout (overriding the client's); return the deadline."""
    request.extensions = {**request.extensions, "timeout": httpx.Timeout(timeout).as_dict()}
    return time.monotonic() + timeout


def _check_deadline(deadline: float, timeout: float) -> None:
    # httpx's read timeout bounds each read, not the whole body; a provider trickling bytes
    # would otherwise hold the worker slot indefinitely.
    if time.monotonic() > deadline:
        raise TimedOut(f"the provider did not finish its response within {timeout:g}s")


def _buffered(response: httpx.Response, request: httpx.Request, body: bytes) -> httpx.Response:
    """A fully read copy of a streamed response, its body decoded as the headers say."""
    buffered = httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=httpx.ByteStream(body),
        request=request,
        extensions=response.extensions,
    )
    buffered.read()  # content-encoding is undone here; a bad gzip raises DecodingError
    return buffered


@contextmanager
def _provider_errors(request: httpx.Request) -> Iterator[None]:
    """Translate httpx exceptions raised inside the block into the provider taxonomy."""
    try:
        yield
    except httpx.TimeoutException as exc:
        message = _TIMEOUT_MESSAGES.get(type(exc), "timed out talking to the provider")
        raise TimedOut(_with_detail(message, exc, request)) from exc
    except httpx.HTTPError as exc:
        message = next(text for kind, text in _TRANSPORT_MESSAGES if isinstance(exc, kind))
        raise ServerFailed(_with_detail(message, exc, request)) from exc


def _with_detail(message: str, exc: Exception, request: httpx.Request) -> str:
    detail = safe_excerpt(str(exc), request_secrets(request), limit=120)
    return f"{message} ({detail})" if detail else message
