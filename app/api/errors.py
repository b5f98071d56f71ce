"""One rendering for every error: ``{"error": {"code", "message", "param"?, "line"?}}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import SwitchboardError

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str
    param: str | None = None
    line: int | None = None


class ErrorBody(BaseModel):
    """Every error the API answers with."""

    error: ErrorDetail


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all in the one error shape."""
    meaning = {
        400: "Invalid input: the message names the field or line",
        401: "No API key, or one this gateway does not know",
        402: "A budget has no room for this job's worst-case cost",
        403: "The key may not do this (e.g. a tenant key on an admin endpoint)",
        404: "No such resource",
        409: "Idempotency-Key reused for a different request",
        413: "Too large",
        415: "Unsupported content type",
        503: "A backing service is unavailable",
    }
    return {s: {"model": ErrorBody, "description": meaning[s]} for s in statuses}


_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "request_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


async def _switchboard_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SwitchboardError)
    return error_response(exc.http_status, exc.to_dict())


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return error_response(
            400, {"code": "invalid_json", "message": f"the body is not valid JSON: {first['msg']}"}
        )
    param = _location(tuple(first.get("loc", ())))
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    body: dict[str, Any] = {
        "code": "invalid_request",
        "message": f"`{param}`: {message}" if param else message,
    }
    if param:
        body["param"] = param
    return error_response(400, body)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return error_response(exc.status_code, {"code": code, "message": str(exc.detail)}, headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)  # PARTIAL: the path matches, the method not
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


async def _dependency_down(_: Request, exc: Exception) -> JSONResponse:
    log.warning("dependency unavailable: %s", type(exc).__name__)
    return error_response(
        503, {"code": "unavailable", "message": "a backing service is unavailable; retry shortly"}
    )


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, {"code": "internal_error", "message": "internal error"})


class RefuseNulInUrl:
    """A NUL in a path or query value can reach no resource and no column (Postgres text
    refuses it): answer 400 before any endpoint, whatever parameter it is in."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"")
        ):
            body = {"code": "invalid_request", "message": "the URL contains a NUL character"}
            await error_response(400, body)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(RefuseNulInUrl)
    app.add_exception_handler(SwitchboardError, _switchboard_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(OperationalError, _dependency_down)
    app.add_exception_handler(RedisError, _dependency_down)
    app.add_exception_handler(DBAPIError, _unexpected)
    app.add_exception_handler(Exception, _unexpected)
