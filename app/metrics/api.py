"""The API's metrics: its requests, the jobs it ends, its breaker resets, and ``GET /metrics``.

Requests are labelled by route template (``/v1/jobs/{job_id}``), never the raw path, and
methods outside HTTP's usual few count as ``OTHER``: what callers send cannot grow the series.
``/metrics`` itself is not in the OpenAPI document (it is not part of the API a client
programs against) and, with ``SWITCHBOARD_METRICS_TOKEN`` set, wants that token.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response
from app.api.state import ApiState
from app.cache.tally import HIT, CacheCount
from app.config import Settings
from app.jobs.observer import JobEnd
from app.metrics import families
from app.metrics.exposition import CHALLENGE, PATH, metrics_token, refusal, render
from app.metrics.families import tally
from app.metrics.state import StateCollector, StateReader
from app.routing.breakers import BreakerState

UNMATCHED = "unmatched"  # no route: a 404, or a request refused before routing
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ApiMetrics:
    """One API app's metrics, on a registry of its own (an app made twice in one process,
    as tests do, counts twice apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = families.http_requests(r)
        self.duration = families.http_duration(r)
        self.jobs_finished = families.jobs_finished(r)
        self.breaker_transitions = families.breaker_transitions(r)
        self.cache_lookups = families.cache_lookups(r)
        self.cache_saved = families.cache_saved(r)
        families.process(r)
        self.state = StateCollector()
        r.register(self.state)

    def attach(self, state: ApiState) -> None:
        """Read the gateway's state through ``state`` from now on, and count the transitions
        of its breakers (an operator's reset); called at startup."""
        self.state.reader = StateReader(state)
        if state.breakers is not None:
            state.breakers.on_transition = self.breaker_moved

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)

    def ended(self, job: JobEnd, count: int = 1) -> None:
        """A job (or ``count`` like it) the API ended: a job's or a batch's cancellation."""
        self.jobs_finished.labels(job.status, job.provider, job.model, job.priority).inc(count)

    def breaker_moved(self, target: str, was: BreakerState, now: BreakerState) -> None:
        self.breaker_transitions.labels(target, was.value, now.value).inc()

    def cache_counted(self, counts: Iterable[CacheCount]) -> None:
        """Cache outcomes of a submission: hits served at once (jobs that ended), and the
        misses of exact lookups."""
        for count in counts:
            tally(self.cache_lookups, self.cache_saved, count)
            if count.outcome == HIT:
                labels = ("succeeded", count.provider, count.model, count.priority)
                self.jobs_finished.labels(*labels).inc()


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.request(scope["method"], route_template(scope), status, elapsed)


def route_template(scope: Scope) -> str:
    """The template of the route that served the request, prefixes included.

    The router writes the matched route into the scope. A route of a router included in
    another router knows only its own router's prefix, so FastAPI's record of the route as
    included (``path_format``, newer FastAPI) comes first where there is one.
    """
    fastapi_scope = scope.get("fastapi")
    included = (
        fastapi_scope.get("effective_route_context") if isinstance(fastapi_scope, dict) else None
    )
    template = getattr(included, "path_format", None) or getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) and template else UNMATCHED


async def _metrics(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


CurrentMetrics = Annotated[ApiMetrics, Depends(_metrics)]


def install(app: FastAPI, settings: Settings) -> ApiMetrics:
    """Count ``app``'s requests and serve ``GET /metrics``; ``attach`` it at startup."""
    metrics = ApiMetrics()
    app.state.metrics = metrics
    app.add_middleware(RequestMetrics, metrics=metrics)
    token = metrics_token(settings)

    def scrape(request: Request) -> Response:
        refused = refusal(request.headers.get("authorization"), token)
        if refused is not None:
            body = {"code": refused.code, "message": refused.message}
            return error_response(401, body, headers={"WWW-Authenticate": CHALLENGE})
        output, content_type = render(metrics.registry, request.headers.get("accept"))
        return Response(output, media_type=content_type)

    # Sync: reading the state does blocking I/O, so it runs in the thread pool.
    app.add_api_route(PATH, scrape, methods=["GET"], include_in_schema=False)
    return metrics
