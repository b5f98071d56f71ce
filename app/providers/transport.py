"""The one place a provider request touches the network.

``send`` / ``send_async`` put the per-attempt timeout on the request, read the whole body
before returning (so a body that stalls or trickles also runs into the deadline) and
translate every httpx exception at this single boundary, the way httpx's own
``map_httpcore_exceptions`` translates httpcore's. ``open_stream`` is the streaming send:
it hands the body over line by line as it arrives, under the same timeout for the whole
stream and the same translation:

    httpx.TimeoutException              -> TimedOut
    httpx.ConnectError                  -> ServerFailed  could not connect
    httpx.RemoteProtocolError           -> ServerFailed  connection dropped / bad HTTP
    httpx.ReadError, httpx.WriteError   -> ServerFailed  connection failed mid-exchange
    other httpx.TransportError          -> ServerFailed
    httpx.DecodingError                 -> ServerFailed  body not decodable (gzip, ...)
    any other httpx.HTTPError           -> ServerFailed

Status codes are not judged here: a 429 or 500 comes back as a response for the adapter's
``parse_response`` to classify. Nothing outside ``app.providers`` catches an httpx error.

A stream's deadline holds for its whole body, not per read: a stream that keeps trickling is
cut at the next read past it, and one that stalls is cut by a watchdog that shuts its socket
down at the deadline, so the blocked read returns at once (httpx's read timeout alone would
let every stalled read wait a whole timeout again).
"""

from __future__ import annotations

import codecs
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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


class ProviderStream:
    """A provider's response being received: status and headers at once, the body as it comes."""

    def __init__(
        self, response: httpx.Response, request: httpx.Request, deadline: float, timeout: float
    ) -> None:
        self._response = response
        self._request = request
        self._deadline = deadline
        self._timeout = timeout
        self._watchdog = _Watchdog(response, deadline)

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self._response.headers

    @property
    def is_success(self) -> bool:
        return self._response.is_success

    @property
    def media_type(self) -> str:
        """The content type without its parameters, lower-case (``text/event-stream``)."""
        content_type = str(self.headers.get("content-type", ""))
        return content_type.partition(";")[0].strip().lower()

    def whole(self) -> httpx.Response:
        """The rest of the body, read within the deadline, as an ordinary response (for an
        error status, or a server that answered a stream request with one JSON body)."""
        with self._translated():
            if self._response.is_stream_consumed:
                return self._response
            body = bytearray()
            for chunk in self._response.iter_raw():
                body += chunk
                _check_deadline(self._deadline, self._timeout)
            return _buffered(self._response, self._request, bytes(body))

    def lines(self) -> Iterator[list[str]]:
        """The body's text lines (without their line breaks) as each read completes them:
        one list per read, often empty; the last line is yielded even without a final break."""
        decoder = codecs.getincrementaldecoder(self._response.encoding or "utf-8")("replace")
        pending = ""
        with self._translated():
            for chunk in self._response.iter_bytes():
                if time.monotonic() > self._deadline:
                    raise _stream_timeout(self._timeout)
                text = pending + decoder.decode(chunk)
                *complete, pending = text.split("\n")
                yield [line.removesuffix("\r") for line in complete]
            rest = pending + decoder.decode(b"", final=True)
            if rest:
                yield [rest.removesuffix("\r")]

    def close(self) -> None:
        self._watchdog.cancel()
        # Closing may run while an error from the body propagates: it must not replace it.
        with suppress(httpx.HTTPError):
            self._response.close()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Provider errors for httpx ones; a read the watchdog cut is the stream's timeout."""
        try:
            with _provider_errors(self._request):
                yield
        except ServerFailed as failed:
            if self._watchdog.fired:
                raise _stream_timeout(self._timeout) from failed
            raise


@contextmanager
def open_stream(
    client: httpx.Client, request: httpx.Request, *, timeout: float
) -> Iterator[ProviderStream]:
    """Send ``request`` and hold its response open while the caller reads it as it arrives,
    all of it within ``timeout`` seconds; closed on leaving the block.

    Any status comes back (``ProviderStream.whole`` reads an error body for the adapter to
    classify); raises ``TimedOut`` or ``ServerFailed``, while opening and while reading.
    """
    deadline = _apply_timeout(request, timeout)
    with _provider_errors(request):
        response = client.send(request, stream=True)
    stream = ProviderStream(response, request, deadline, timeout)
    try:
        yield stream
    finally:
        stream.close()


class _Watchdog:
    """Cuts a stream's connection at its deadline: shutting the socket down makes a read
    blocked on a stalled provider fail at once. Without a socket (in-memory transports,
    HTTP/2) only the check after each read applies."""

    def __init__(self, response: httpx.Response, deadline: float) -> None:
        self.fired = False
        self._response = response
        self._lock = threading.Lock()
        self._cancelled = False
        self._timer = threading.Timer(max(deadline - time.monotonic(), 0.0), self._cut)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        """Stand down; once this returns the connection is never touched (it may go back to
        the pool and serve another request)."""
        with self._lock:
            self._cancelled = True
        self._timer.cancel()

    def _cut(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            network = self._response.extensions.get("network_stream")
            sock = None if network is None else network.get_extra_info("socket")
            if isinstance(sock, socket.socket):
                self.fired = True
                # socket.socket's own shutdown, also for an SSLSocket (whose override would
                # drop its TLS state under the reading thread's feet).
                with suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _stream_timeout(timeout: float) -> TimedOut:
    return TimedOut(f"the provider did not finish its stream within {timeout:g}s")


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
