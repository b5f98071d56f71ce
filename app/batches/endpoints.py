"""``/v1/batches``: submit many jobs at once (JSON or JSONL), follow them, collect results."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from app.api.auth import CurrentCaller
from app.api.deps import CurrentRegistry, IdempotencyKey, ReadSession, State
from app.api.errors import documented
from app.api.publish import publish_after_commit
from app.api.state import ApiState
from app.batches.input import BatchRequest, parse_jsonl, parse_requests, validation_error
from app.batches.schemas import BatchOut
from app.batches.service import (
    BatchOptions,
    SubmittedBatch,
    batch_object,
    get_batch,
    iter_results,
    output_line,
    result_page,
    submit_batch,
)
from app.constants import MAX_BATCH_REQUESTS, Priority
from app.db.engine import unit_of_work
from app.errors import BatchTooLarge, InvalidInput
from app.jobs.schemas import BatchItem, BatchLine, Metadata, Project, Strict, WebhookUrl
from app.policies.endpoints import Policies
from app.policies.rules import Policy
from app.registry.service import Registry
from app.routing.live import CurrentPerformance
from app.routing.plan import PerformanceSource
from app.webhooks.routes import adopt

router = APIRouter(prefix="/v1/batches", tags=["batches"])

BatchId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_]+$")]
JSONL_TYPES = {"application/jsonl", "application/x-ndjson", "application/x-jsonlines", "text/jsonl"}


class BatchEnvelope(Strict):
    """The JSON body of ``POST /v1/batches``; each request is checked on its own after this."""

    requests: Annotated[list[Any], Field(max_length=MAX_BATCH_REQUESTS)] | None = None
    input_file_id: Annotated[str, Field(max_length=128)] | None = Field(
        default=None, description="OpenAI-style uploaded input file (not accepted yet)."
    )
    endpoint: Literal["/v1/chat/completions"] = "/v1/chat/completions"
    completion_window: Literal["24h"] = "24h"
    metadata: Metadata | None = None
    priority: Priority = Priority.LOW
    project: Project | None = None
    webhook_url: WebhookUrl | None = Field(
        default=None, description="Where to POST `batch.completed` (signed); not per job."
    )


class BatchCreate(BatchEnvelope):
    """Documentation of the JSON body: requests in the flat shape or as OpenAI batch lines."""

    requests: (
        Annotated[list[BatchItem | BatchLine], Field(max_length=MAX_BATCH_REQUESTS)] | None
    ) = None


class BatchQueryOptions(Strict):
    priority: Priority = Priority.LOW
    project: Project | None = None
    webhook_url: WebhookUrl | None = None
    completion_window: Literal["24h"] = "24h"
    endpoint: Literal["/v1/chat/completions"] = "/v1/chat/completions"
    metadata: Metadata | None = None


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
            "schema": {"type": "string", "enum": [p.value for p in Priority]},
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
    ],
}


@router.post(
    "",
    status_code=status.HTTP_200_OK,
    summary="Submit a batch of chat jobs (JSON `requests` or a JSONL body)",
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
) -> Response:
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
    lines: list[int] | None
    if media in JSONL_TYPES:
        options, requests, lines = _from_jsonl(body, request, state)
    elif media in ("application/json", ""):
        options, requests, lines = _from_json(body, state)
    else:
        raise InvalidInput(
            f"unsupported content type {media!r}: send application/json or application/x-ndjson",
            code="unsupported_media_type",
            http_status=415,
        )
    submitted = await run_in_threadpool(
        _submit,
        state,
        registry,
        requests,
        options,
        idempotency_key,
        lines,
        caller.tenant_id,
        performance.get,
        policies.get,
    )
    if submitted.created:
        await run_in_threadpool(publish_after_commit, state.dispatcher, submitted.refs)
    content = batch_object(submitted.batch, job_ids=submitted.job_ids)
    return Response(orjson.dumps(content), media_type="application/json")


def _submit(
    state: ApiState,
    registry: Registry,
    requests: list[BatchRequest],
    options: BatchOptions,
    idempotency_key: str | None,
    lines: list[int] | None,
    tenant_id: str,
    performance: PerformanceSource,
    policies: Callable[[], list[Policy]],
) -> SubmittedBatch:
    with unit_of_work(state.sessions) as session:
        notify = adopt(session, state, tenant_id, options.webhook_url)
        return submit_batch(
            session,
            requests,
            registry,
            replace(options, notify=notify),
            tenant_id=tenant_id,
            idempotency_key=idempotency_key,
            line_numbers=lines,
            usable=state.usable,
            performance=performance,
            policies=policies,
        )


def _from_json(body: bytes, state: ApiState) -> tuple[BatchOptions, list[BatchRequest], None]:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise InvalidInput(f"the body is not valid JSON: {err}", code="invalid_json") from None
    limit = state.settings.max_batch_requests
    if (
        isinstance(raw, dict)
        and isinstance(raw.get("requests"), list)
        and len(raw["requests"]) > limit
    ):
        raise BatchTooLarge(
            f"a batch holds at most {limit} requests; this one has {len(raw['requests'])}",
            param="requests",
        )
    try:
        envelope = BatchEnvelope.model_validate(raw)
    except ValidationError as err:
        raise validation_error(err) from None
    if envelope.input_file_id is not None:
        raise InvalidInput(
            "input_file_id is not accepted yet: send the requests inline as `requests` or JSONL",
            code="unsupported",
            param="input_file_id",
        )
    if envelope.requests is None:
        raise InvalidInput("give `requests`", code="invalid_request", param="requests")
    requests = parse_requests(envelope.requests, limit=limit)
    options = BatchOptions(
        endpoint=envelope.endpoint,
        completion_window=envelope.completion_window,
        priority=envelope.priority,
        metadata=envelope.metadata,
        project=envelope.project,
        webhook_url=envelope.webhook_url,
    )
    return options, requests, None


def _from_jsonl(
    body: bytes, request: Request, state: ApiState
) -> tuple[BatchOptions, list[BatchRequest], list[int]]:
    query: dict[str, Any] = dict(request.query_params)
    if "metadata" in query:
        try:
            query["metadata"] = orjson.loads(query["metadata"])
        except orjson.JSONDecodeError:
            raise InvalidInput(
                "the metadata query parameter must be a JSON object", param="metadata"
            ) from None
    try:
        parsed = BatchQueryOptions.model_validate(query)
    except ValidationError as err:
        raise validation_error(err) from None
    requests = parse_jsonl(body, limit=state.settings.max_batch_requests)
    lines = [n for n, line in enumerate(body.split(b"\n"), start=1) if line.strip()]
    options = BatchOptions(
        endpoint=parsed.endpoint,
        completion_window=parsed.completion_window,
        priority=parsed.priority,
        metadata=parsed.metadata,
        project=parsed.project,
        webhook_url=parsed.webhook_url,
    )
    return options, requests, lines


@router.get("/{batch_id}", summary="A batch's status and request counts", response_model=BatchOut)
def read_batch(batch_id: BatchId, caller: CurrentCaller, session: ReadSession) -> Response:
    batch = get_batch(session, batch_id, tenant_id=caller.scope())
    return Response(orjson.dumps(batch_object(batch)), media_type="application/json")


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
    after: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    format: Annotated[Literal["json", "jsonl"], Query()] = "json",
) -> Response:
    get_batch(session, batch_id, tenant_id=caller.scope())
    if format == "jsonl":
        return StreamingResponse(_jsonl(state, batch_id), media_type="application/jsonl")
    rows, more = result_page(session, batch_id, after=after, limit=limit)
    page = ResultPage(
        data=[output_line(r) for r in rows],
        first_id=rows[0].id if rows else None,
        last_id=rows[-1].id if rows else None,
        has_more=more,
    )
    return Response(page.model_dump_json(), media_type="application/json")


def _jsonl(state: ApiState, batch_id: str) -> Iterator[bytes]:
    with state.sessions() as session:
        for job in iter_results(session, batch_id):
            yield orjson.dumps(output_line(job)) + b"\n"
