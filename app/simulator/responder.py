"""Writing answers: the ``Responder`` the engine writes to, and the shapes it writes."""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

from app.simulator.formats.base import JSON_MEDIA_TYPE, Headers


class Responder(Protocol):
    """Where the engine writes an answer (over the ASGI ``send``, in the server)."""

    async def start(self, status: int, headers: Headers) -> None: ...

    async def body(self, chunk: bytes, *, more: bool = False) -> None: ...

    async def hold(self, seconds: float) -> bool:
        """Wait ``seconds``; False as soon as the caller disconnects."""
        ...


async def send_whole(
    out: Responder, status: int, body: bytes, headers: Headers | None = None
) -> None:
    """Write a complete JSON answer."""
    start = [(b"content-type", JSON_MEDIA_TYPE), (b"content-length", str(len(body)).encode())]
    await out.start(status, start + (headers or []))
    await out.body(body)


async def send_stream(
    out: Responder,
    chunks: list[bytes],
    headers: Headers,
    media_type: bytes,
    spread_s: float,
    *,
    hold_s: float = 0.0,
) -> None:
    """Write a 200 stream of ``chunks``, spreading ``spread_s`` seconds between them; with
    ``hold_s``, stall that long (or until the caller hangs up) before ending it."""
    await out.start(200, [(b"content-type", media_type), (b"cache-control", b"no-cache"), *headers])
    if spread_s <= 0:
        await out.body(b"".join(chunks), more=hold_s > 0)
    else:
        gap = spread_s / max(len(chunks), 1)
        for chunk in chunks:
            await out.body(chunk, more=True)
            await asyncio.sleep(gap)
    if hold_s > 0 and not await out.hold(hold_s):
        return
    if spread_s > 0 or hold_s > 0:
        await out.body(b"")


def retry_headers(wait_s: float) -> Headers:
    """``retry-after`` (whole seconds, rounded up) and ``retry-after-ms`` for a 429."""
    seconds = max(1, math.ceil(wait_s - 1e-9))
    milliseconds = max(1, math.ceil(wait_s * 1000 - 1e-6))
    return [
        (b"retry-after", str(seconds).encode()),
        (b"retry-after-ms", str(milliseconds).encode()),
        (b"x-should-retry", b"true"),
    ]
