"""Serving metrics: the bearer-token check both servers share, and a worker process's server.

The API serves ``GET /metrics`` among its routes (``app.metrics.api``); a worker process has
no HTTP server of its own, so it runs this small threaded one on ``metrics_port``, answering
``GET /metrics`` only. With ``SWITCHBOARD_METRICS_TOKEN`` set, both answer 401 in the API's
error shape to a scrape without ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import ThreadingWSGIServer, choose_encoder

from app.config import Settings
from app.errors import Unavailable
from app.tenants.keys import same_secret

log = logging.getLogger(__name__)

PATH = "/metrics"
CHALLENGE = 'Bearer realm="metrics"'

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def metrics_token(settings: Settings) -> str | None:
    """The token scrapes must present, or None (an empty ``SWITCHBOARD_METRICS_TOKEN`` is
    unset, as compose files write an unset variable)."""
    if settings.metrics_token is None:
        return None
    return settings.metrics_token.get_secret_value() or None


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str

    def body(self) -> bytes:
        return _error(self.code, self.message)


def refusal(authorization: str | None, token: str | None) -> Refusal | None:
    """Why a scrape with this ``Authorization`` header is refused; None: it may read."""
    if token is None:
        return None
    if authorization is None:
        return Refusal("missing_metrics_token", "metrics need `Authorization: Bearer <token>`")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not same_secret(value.strip(), token):
        return Refusal("invalid_metrics_token", "this metrics token is not valid")
    return None


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The registry in the format the scraper asked for (Prometheus text or OpenMetrics)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per scrape is noise


class MetricsServer:
    """``GET /metrics`` on ``host:port``, from threads of its own."""

    def __init__(self, registry: CollectorRegistry, token: str | None) -> None:
        self.registry = registry
        self.token = token
        self._server: ThreadingWSGIServer | None = None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return _answer(start_response, "404 Not Found", _error("not_found", "see /metrics"))
        if environ.get("REQUEST_METHOD") != "GET":
            body = _error("method_not_allowed", "use GET")
            return _answer(start_response, "405 Method Not Allowed", body, [("Allow", "GET")])
        refused = refusal(environ.get("HTTP_AUTHORIZATION"), self.token)
        if refused is not None:
            headers = [("WWW-Authenticate", CHALLENGE)]
            return _answer(start_response, "401 Unauthorized", refused.body(), headers)
        output, content_type = render(self.registry, environ.get("HTTP_ACCEPT"))
        start_response("200 OK", [("Content-Type", content_type)])
        return [output]

    def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port); returns the port."""
        try:
            self._server = make_server(host, port, self, ThreadingWSGIServer, handler_class=_Quiet)
        except OSError as exc:
            raise Unavailable(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}",
                code="metrics_port_unavailable",
            ) from None
        thread = threading.Thread(
            target=self._server.serve_forever, name="switchboard-metrics", daemon=True
        )
        thread.start()
        bound = int(self._server.server_address[1])
        log.info("metrics on http://%s:%d%s", host, bound, PATH)
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _error(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


def _answer(
    start_response: StartResponse,
    status: str,
    body: bytes,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"), *(headers or [])])
    return [body]
