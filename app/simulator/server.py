"""The simulator as an HTTP server: a raw ASGI app over the ``Simulator`` engine.

Routes: every provider's endpoints under ``/{provider}/`` (see ``formats``), plus the admin
endpoints, which need no key:

- ``GET /_health`` — ``{"status": "ok"}``;
- ``GET /_stats`` — counters since start or the last reset (see ``stats``);
- ``POST /_reset`` — zero the counters and every rate-limit bucket;
- ``GET /_config`` — the ``SimulatorConfig`` being served;
- ``PUT /_config`` — replace it (fresh buckets, reseeded RNGs; counters are kept); an invalid
  config answers 422 with pydantic's error list.

A raw ASGI app rather than a framework: the hot path is one dict lookup, one ``orjson`` parse
and one ``orjson`` dump, which keeps a single core well above 2,000 chat requests per second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import uvicorn
from pydantic import ValidationError

from app.simulator.calls import HttpRequest
from app.simulator.config import SimulatorConfig
from app.simulator.engine import Simulator
from app.simulator.formats.base import Headers
from app.simulator.responder import send_whole

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class AsgiResponder:
    """The engine's ``Responder`` over an ASGI ``send`` / ``receive`` pair."""

    __slots__ = ("_receive", "_send")

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send

    async def start(self, status: int, headers: Headers) -> None:
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, chunk: bytes, *, more: bool = False) -> None:
        await self._send({"type": "http.response.body", "body": chunk, "more_body": more})

    async def hold(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                while (await self._receive())["type"] != "http.disconnect":
                    pass
        except TimeoutError:
            return True
        return False


class SimulatorApp:
    """The ASGI application; ``simulator`` is its state, reachable for in-process tests."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.simulator = Simulator(config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        body: bytes = message.get("body", b"")
        if message.get("more_body", False):
            parts = [body]
            while message.get("more_body", False):
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                parts.append(message.get("body", b""))
            body = b"".join(parts)
        request = HttpRequest(
            scope["method"], scope["path"], scope.get("query_string", b""), scope["headers"], body
        )
        out = AsgiResponder(receive, send)
        if request.path.startswith("/_"):
            await self._admin(request, out)
        else:
            await self.simulator.serve(request, out)

    async def _admin(self, request: HttpRequest, out: AsgiResponder) -> None:
        route = (request.method, request.path)
        simulator = self.simulator
        if route == ("GET", "/_health"):
            await send_whole(out, 200, b'{"status":"ok"}')
        elif route == ("GET", "/_stats"):
            await send_whole(out, 200, orjson.dumps(simulator.stats.to_json()))
        elif route == ("POST", "/_reset"):
            simulator.reset()
            await send_whole(out, 200, b'{"status":"reset"}')
        elif route == ("GET", "/_config"):
            await send_whole(out, 200, simulator.config.model_dump_json().encode())
        elif route == ("PUT", "/_config"):
            try:
                config = SimulatorConfig.model_validate_json(request.body)
            except ValidationError as error:
                detail = error.errors(include_url=False, include_context=False, include_input=False)
                await send_whole(out, 422, orjson.dumps({"detail": detail}, default=str))
                return
            simulator.configure(config)
            await send_whole(out, 200, config.model_dump_json().encode())
        else:
            message = f"No admin endpoint {request.method} {request.path}."
            await send_whole(out, 404, orjson.dumps({"error": {"message": message}}))


async def _lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge startup and shutdown; the simulator holds nothing that needs closing."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(config: SimulatorConfig) -> SimulatorApp:
    """The simulator's ASGI application serving ``config``."""
    return SimulatorApp(config)


def run(host: str, port: int, config: SimulatorConfig, *, log_level: str = "warning") -> None:
    """Serve ``config`` on ``host:port`` until interrupted (uvicorn, httptools, uvloop)."""
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        http="httptools",
        loop="uvloop",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
