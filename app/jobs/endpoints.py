"""``/v1/jobs``: submit one job, read it back (a chain or an ensemble too, with its steps)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from app.api.auth import CurrentCaller
from app.api.deps import IdempotencyKey, ReadSession, UnitOfWork
from app.api.errors import documented
from app.cache.schemas import CacheOut
from app.db.tables import AttemptRow, JobRow
from app.embeddings.vectors import Encoding, with_vectors
from app.jobs.observer import JobEnd
from app.jobs.schemas import (
    AttemptOut,
    EmbeddingsOut,
    ErrorInfo,
    JobAccepted,
    JobCreate,
    JobList,
    JobOut,
    JobResult,
    ToolCallOut,
    Usage,
)
from app.jobs.service import cancel_job, get_job, job_attempts, list_jobs
from app.jobs.states import JobStatus
from app.jobs.submission import Submitter
from app.ledger.cost import format_usd
from app.metrics.api import CurrentMetrics
from app.orchestration.service import (
    cancel_orchestration,
    get_orchestration,
    is_orchestration_id,
    steps_of,
)
from app.orchestration.views import orchestration_out, parent_ref

log = logging.getLogger(__name__)
EMBEDDING = "embedding"
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

JobId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_]+$")]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Submit one chat job",
    response_model=JobAccepted,
    responses=documented(402, 409),
)
def create_job(
    spec: JobCreate, submitter: Submitter, idempotency_key: IdempotencyKey
) -> JobAccepted:
    accepted = submitter.submit(spec, idempotency_key)
    return JobAccepted(id=accepted.id, status=accepted.status, created=accepted.created)


@router.get("", summary="Jobs, newest first")
def read_jobs(
    caller: CurrentCaller,
    session: ReadSession,
    status: Annotated[JobStatus | None, Query()] = None,
    batch_id: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_]+$")] = None,
    parent_id: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=r"^[A-Za-z0-9_]+$",
            description="Only the steps of this chain or ensemble.",
        ),
    ] = None,
    after: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[A-Za-z0-9_]+$", description="The last id seen."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JobList:
    rows, more = list_jobs(
        session,
        tenant_id=caller.scope(),
        status=status,
        batch_id=batch_id,
        parent_id=parent_id,
        after=after,
        limit=limit,
    )
    return JobList(
        data=[job_out(r, None) for r in rows],
        first_id=rows[0].id if rows else None,
        last_id=rows[-1].id if rows else None,
        has_more=more,
    )


@router.get(
    "/{job_id}",
    summary="A job's status, result, model, tokens, cost and attempts",
    response_model=JobOut,
)
def read_job(
    job_id: JobId,
    caller: CurrentCaller,
    session: ReadSession,
    attempts: Annotated[bool, Query(description="Include every attempt.")] = True,
    vectors: Annotated[
        Encoding | None,
        Query(description="An embedding job's vectors too: as floats, or base64 float32."),
    ] = None,
) -> JobOut | Response:
    if is_orchestration_id(job_id):  # a chain or an ensemble: its steps are jobs
        row = get_orchestration(session, job_id, tenant_id=caller.scope())
        return orchestration_out(row, [job_out(s, None) for s in steps_of(session, job_id)])
    job = get_job(session, job_id, tenant_id=caller.scope())
    out = job_out(job, job_attempts(session, job_id) if attempts else None)
    if vectors is None or out.embeddings is None:
        return out
    return with_vectors(session, out, vectors)


@router.post(
    "/{job_id}/cancel",
    summary="Cancel a job that has not started (queued or waiting), or a chain or ensemble",
    responses=documented(409),
)
def cancel(
    job_id: JobId, caller: CurrentCaller, uow: UnitOfWork, metrics: CurrentMetrics
) -> JobOut:
    if is_orchestration_id(job_id):
        return _cancel_orchestration(job_id, caller, uow, metrics)
    with uow() as session:
        job, cancelled = cancel_job(session, job_id, tenant_id=caller.scope())
        out = job_out(job, job_attempts(session, job_id))
    if cancelled:
        model = job.models[job.chain_index]
        metrics.ended(JobEnd("cancelled", job.provider, model, job.priority, job.created_at))
    return out


def _cancel_orchestration(
    job_id: str, caller: CurrentCaller, uow: UnitOfWork, metrics: CurrentMetrics
) -> JobOut:
    with uow() as session:
        row, cancelled = cancel_orchestration(session, job_id, tenant_id=caller.scope())
        out = orchestration_out(row, [job_out(s, None) for s in steps_of(session, job_id)])
    for step in cancelled:
        model = step.models[step.chain_index]
        metrics.ended(JobEnd("cancelled", step.provider, model, step.priority, step.created_at))
    return out


def job_out(job: JobRow, attempts: list[AttemptRow] | None) -> JobOut:
    result, embeddings = None, None
    if job.result is not None and job.kind == EMBEDDING:
        embeddings = EmbeddingsOut(count=job.result["count"], dimensions=job.result["dimensions"])
    elif job.result is not None:
        result = JobResult(
            text=job.result.get("text"),
            finish_reason=job.result.get("finish_reason"),
            tool_calls=[ToolCallOut(**c) for c in job.result.get("tool_calls", [])],
            response_id=job.result.get("response_id"),
            upstream_provider=job.result.get("upstream_provider"),
        )
    usage = None
    if job.input_tokens is not None:
        usage = Usage(
            input_tokens=job.input_tokens,
            output_tokens=job.output_tokens or 0,
            cached_tokens=job.cached_tokens or 0,
            total_tokens=job.input_tokens + (job.output_tokens or 0),
        )
    error = None
    if job.error_class is not None:
        error = ErrorInfo(code=job.error_class, message=job.error_message or job.error_class)
    return JobOut(
        id=job.id,
        kind=job.kind,
        status=job.status,
        priority=job.priority,
        batch_id=job.batch_id,
        custom_id=job.custom_id,
        model=list(job.models),
        routing=job.routing,
        served_model=job.served_model,
        provider=job.served_provider,
        result=result,
        embeddings=embeddings,
        usage=usage,
        cost_usd=format_usd(job.cost_usd),
        latency_ms=job.latency_ms,
        attempt_count=job.attempt_count,
        attempts=None if attempts is None else [attempt_out(a) for a in attempts],
        error=error,
        project=job.project,
        metadata=job.metadata_ or {},
        cache=CacheOut.of(job),
        created_at=job.created_at,
        queued_at=job.queued_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        parent=parent_ref(job),
    )


def attempt_out(a: AttemptRow) -> AttemptOut:
    return AttemptOut(
        number=a.number,
        model=a.model_id,
        provider=a.provider,
        status=a.status,
        started_at=a.started_at,
        finished_at=a.finished_at,
        latency_ms=a.latency_ms,
        http_status=a.http_status,
        error_class=a.error_class,
        error_message=a.error_message,
        retry_after_s=a.retry_after_s,
        decision=a.decision,
        decision_reason=a.decision_reason,
        input_tokens=a.input_tokens,
        output_tokens=a.output_tokens,
        cost_usd=format_usd(a.cost_usd),
    )
