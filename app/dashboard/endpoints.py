"""``/dashboard``: the status page (public, static) and ``/v1/dashboard``: its data (admin).

The page holds no data and no secret: it asks for the admin key once, keeps it in the
browser's ``localStorage`` and sends it as a Bearer token to ``/v1/dashboard``, every few
seconds. Its strict Content-Security-Policy lets only its own script run (and the script
writes text, never markup), so nothing an error message carries can reach that key.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from app.api.auth import AdminCaller
from app.api.deps import ReadSession
from app.dashboard.schemas import DashboardOut
from app.dashboard.service import Snapshots, dashboard
from app.errors import NotFound, Unavailable
from app.metrics.api import CurrentMetrics

page_router = APIRouter(include_in_schema=False)
router = APIRouter(prefix="/v1/dashboard", tags=["dashboard"])

PAGE = "dashboard.html"
ASSETS = {PAGE: "text/html", "dashboard.js": "text/javascript", "dashboard.css": "text/css"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def _asset(name: str) -> bytes:
    return (resources.files("app.dashboard") / "static" / name).read_bytes()


def _serve(name: str) -> Response:
    return Response(_asset(name), media_type=ASSETS[name], headers=HEADERS)


@page_router.get("/dashboard")
def page() -> Response:
    return _serve(PAGE)


@page_router.get("/dashboard/{name}")
def asset(name: Annotated[str, Path(max_length=64)]) -> Response:
    if name not in ASSETS or name == PAGE:
        raise NotFound(f"no dashboard file {name[:64]!r}", code="not_found")
    return _serve(name)


def _snapshots(request: Request) -> Snapshots:
    snapshots: Snapshots | None = getattr(request.app.state, "dashboard", None)
    if snapshots is None:
        snapshots = request.app.state.dashboard = Snapshots()
    return snapshots


@router.get(
    "",
    summary="Queues, throughput, success rate, spend by model and recent failures (admin)",
    response_model=DashboardOut,
)
def data(
    caller: AdminCaller, session: ReadSession, metrics: CurrentMetrics, request: Request
) -> DashboardOut:
    """What the status page at ``/dashboard`` draws; a snapshot at most a few seconds old.
    The ledger figures cover every tenant, or the one ``X-Switchboard-Tenant`` names."""
    scope = caller.scope()
    snapshots = _snapshots(request)
    cached = snapshots.get(scope)
    if cached is not None:
        return cached
    reader = metrics.state.reader
    if reader is None:
        raise Unavailable("the API is still starting", code="starting")
    snapshot = dashboard(session, reader.get(), tenant_id=scope)
    snapshots.put(scope, snapshot)
    return snapshot
