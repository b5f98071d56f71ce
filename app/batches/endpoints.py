"""``/v1/batches``: OpenAI's Batch API — submit many jobs at once (inline JSON or JSONL, or an
uploaded file), follow them, cancel them, collect their results. Errors come in OpenAI's
shape (``type`` beside the code)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from app.api.auth import CurrentCaller
from app.api.deps import CurrentRegistry, IdempotencyKey, ReadSession, State, UnitOfWork
from app.api.errors import documented
from app.api.publish import publish_after_commit
from app.api.state import ApiState
from app.batches.bodies import JSONL_TYPES, BatchBody, BatchCreate, from_json, from_jsonl
from app.batches.files import read_input_file
from app.batches.kinds import ENDPOINTS
from app.batches.lines import result_lines
from app.batches.reading import batch_object, get_batch, iter_results, list_batches, result_page
from app.batches.schemas import BatchList, BatchOut
from app.batches.service import SubmittedBatch, submit_batch
from app.batches.stop import CANCELLED, stop_batch
from app.cache.directives import CacheConfig
from app.cache.lookup import CacheAtSubmission
from app.chat.endpoints import OpenAIErrors
from app.db.engine import unit_of_work
from app.embeddings.vectors import dumps
from app.errors import Conflict, InvalidInput
from app.metrics.api import CurrentMetrics
from app.policies.endpoints import Policies
from app.policies.rules import Policy
from app.registry.service import Registry
from app.routing.live import CurrentPerformance
from app.routing.plan import PerformanceSource
from app.webhooks.routes import adopt

router = APIRouter(prefix="/v1/batches", tags=["batches"], route_class=OpenAIErrors)

BatchId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_]+$")]
Cursor = Annotated[
    str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_]+$", description="The last id seen.")
]
__all__ = ["BatchCreate", "router"]

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/BatchCreate"}},
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "One request per line."}
            },
        },
    },
    "parameters": [
        {
            "name": "priority",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": ["high", "normal", "low"]},
            "description": "For JSONL bodies (JSON bodies carry it inside).",
        },
        {
            "name": "project",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "For JSONL bodies: the tenant's project the jobs belong to.",
        },
        {
            "name": "metadata",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "For JSONL bodies: a JSON object.",
        },
        {
            "name": "endpoint",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": sorted(ENDPOINTS)},
            "description": "For JSONL bodies: every line's `url` (default /v1/chat/completions).",
        },
    ],
}


@router.post(
    "",
    status_code=status.HTTP_200_OK,
    summary="Submit a batch: an uploaded `input_file_id`, JSON `requests`, or a JSONL body",
    openapi_extra=_BODY_DOC,
    responses={200: {"model": BatchOut}, **documented(402, 409, 413, 415)},
)
async def create_batch(
    request: Request,
    caller: CurrentCaller,
    state: State,
    registry: CurrentRegistry,
    idempotency_key: IdempotencyKey,
    performance: CurrentPerformance,
    policies: Policies,
    metrics: CurrentMetrics,
) -> Response:
    limit = state.settings.max_batch_requests
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.isdigit()
        and int(declared) > state.settings.max_request_bytes
    ):
        raise InvalidInput(
            f"the body is larger than {state.settings.max_request_bytes} bytes",
            code="request_too_large",
            http_status=413,
        )
    body = await request.body()
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media in JSONL_TYPES:
        asked = from_jsonl(body, dict(request.query_params), limit=limit)
    elif media in ("application/json", ""):
        asked = from_json(body, limit=limit)
    else:
        raise InvalidInput(
            f"unsupported content type {media!r}: send application/json or application/x-ndjson",
            code="unsupported_media_type",
            http_status=415,
        )
    cache = CacheAtSubmission(CacheConfig.from_settings(state.settings), registry, caller.tenant_id)
    submitted = await run_in_threadpool(
        _submit,
        state,
        registry,
        asked,
        idempotency_key,
        caller.tenant_id,
        performance.get,
        policies.get,
        cache,
    )
    if submitted.created and submitted.refs:
        await run_in_threadpool(publish_after_commit, state.dispatcher, submitted.refs)
    if submitted.created:
        metrics.cache_counted(cache.counts)
    content = batch_object(submitted.batch, job_ids=submitted.job_ids)
    return Response(orjson.dumps(content), media_type="application/json")


def _submit(
    state: ApiState,
    registry: Registry,
    asked: BatchBody,
    idempotency_key: str | None,
    tenant_id: str,
    performance: PerformanceSource,
    policies: Callable[[], list[Policy]],
    cache: CacheAtSubmission,
) -> SubmittedBatch:
    options = asked.options
    with unit_of_work(state.sessions) as session:
        read = asked.read
        if read is None:
            assert options.input_file_id is not None
            read = read_input_file(
                session,
                options.input_file_id,
                tenant_id=tenant_id,
                endpoint=options.endpoint,
                limit=state.settings.max_batch_requests,
            )
        notify = adopt(session, state, tenant_id, options.webhook_url)
        return submit_batch(
            session,
            read,
            registry,
            replace(options, notify=notify),
            tenant_id=tenant_id,
            idempotency_key=idempotency_key,
            usable=state.usable,
            performance=performance,
            policies=policies,
            cache=cache,
        )


@router.get("", summary="Batches, newest first", response_model=BatchList)
def read_batches(
    caller: CurrentCaller,
    session: ReadSession,
    after: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    rows, more = list_batches(session, tenant_id=caller.scope(), after=after, limit=limit)
    page = {
        "object": "list",
        "data": [batch_object(b) for b in rows],
        "first_id": rows[0].id if rows else None,
        "last_id": rows[-1].id if rows else None,
        "has_more": more,
    }
    return Response(orjson.dumps(page), media_type="application/json")


@router.get("/{batch_id}", summary="A batch's status and request counts", response_model=BatchOut)
def read_batch(batch_id: BatchId, caller: CurrentCaller, session: ReadSession) -> Response:
    batch = get_batch(session, batch_id, tenant_id=caller.scope())
    return Response(orjson.dumps(batch_object(batch)), media_type="application/json")


@router.post(
    "/{batch_id}/cancel",
    summary="Cancel a batch: requests not started are cancelled now, running ones finish",
    response_model=BatchOut,
    responses=documented(409),
)
def cancel_batch(
    batch_id: BatchId, caller: CurrentCaller, uow: UnitOfWork, metrics: CurrentMetrics
) -> Response:
    with uow() as session:
        batch = get_batch(session, batch_id, tenant_id=caller.scope())
        if batch.status not in ("in_progress", "cancelling", "cancelled"):
            raise Conflict(
                f"batch {batch_id!r} is {batch.status}: only a batch in progress can be cancelled",
                code="batch_not_cancellable",
            )
        raw = session.connection().connection.driver_connection
        assert raw is not None
        stopped = stop_batch(raw, batch_id, CANCELLED)
        session.expire_all()
        batch = get_batch(session, batch_id, tenant_id=caller.scope())
        body = batch_object(batch)
    stopped.report(metrics.ended)
    return Response(orjson.dumps(body), media_type="application/json")


class ResultPage(BaseModel):
    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool


@router.get(
    "/{batch_id}/results",
    summary="Finished requests of a batch, paged JSON or JSONL; join on custom_id",
    response_model=ResultPage,
    responses={200: {"content": {"application/jsonl": {"schema": {"type": "string"}}}}},
)
def read_results(
    batch_id: BatchId,
    caller: CurrentCaller,
    state: State,
    session: ReadSession,
    after: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    format: Annotated[Literal["json", "jsonl"], Query()] = "json",
) -> Response:
    endpoint = get_batch(session, batch_id, tenant_id=caller.scope()).endpoint
    if format == "jsonl":
        return StreamingResponse(_jsonl(state, batch_id, endpoint), media_type="application/jsonl")
    rows, more = result_page(session, batch_id, after=after, limit=limit)
    page = {
        "object": "list",
        "data": list(result_lines(session, endpoint, rows)),
        "first_id": rows[0].id if rows else None,
        "last_id": rows[-1].id if rows else None,
        "has_more": more,
    }
    return Response(dumps(page), media_type="application/json")


def _jsonl(state: ApiState, batch_id: str, endpoint: str) -> Iterator[bytes]:
    with state.sessions() as session:
        for line in result_lines(session, endpoint, iter_results(session, batch_id)):
            yield dumps(line) + b"\n"
