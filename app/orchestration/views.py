"""Chains and ensembles as callers read them: a job whose steps are jobs.

``GET /v1/jobs/{id}`` answers for an orchestration in the shape of any job — status, result,
tokens and cost (its steps' sums), error — plus its ``steps`` (each step's id, role, status,
models, cost, result) and ``synthesis``; for a step, the job carries ``parent``.
"""

from __future__ import annotations

from typing import Literal, cast

from app.db.tables import JobRow, OrchestrationRow
from app.jobs.schemas import ErrorInfo, JobOut, JobResult, ParentRef, StepOut, Usage
from app.jobs.states import JobStatus
from app.ledger.cost import format_usd

Kind = Literal["chain", "ensemble"]


def parent_ref(job: JobRow) -> ParentRef | None:
    """Where a job stands in its orchestration, if it is a step of one."""
    if job.parent_id is None:
        return None
    kind = cast(Kind, job.parent_id.partition("_")[0])
    return ParentRef(
        id=job.parent_id, kind=kind, step_index=job.step_index or 0, role=job.step_role or ""
    )


def step_out(job: JobOut) -> StepOut:
    """A step's summary inside its orchestration, from the step as a job."""
    assert job.parent is not None
    return StepOut(
        id=job.id,
        index=job.parent.step_index,
        role=job.parent.role,
        status=job.status,
        model=job.model,
        served_model=job.served_model,
        provider=job.provider,
        result=job.result,
        usage=job.usage,
        cost_usd=job.cost_usd,
        latency_ms=job.latency_ms,
        attempt_count=job.attempt_count,
        error=job.error,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


def orchestration_out(row: OrchestrationRow, steps: list[JobOut] | None) -> JobOut:
    """The orchestration as a job; ``steps`` (as jobs) are listed when given."""
    result = None
    if row.result is not None:
        result = JobResult(
            text=row.result.get("text"),
            finish_reason=row.result.get("finish_reason"),
            response_id=row.result.get("response_id"),
        )
    error = None
    if row.error_class is not None:
        error = ErrorInfo(code=row.error_class, message=row.error_message or row.error_class)
    elif row.status == JobStatus.CANCELLED:
        error = ErrorInfo(code="cancelled", message="cancelled before it finished")
    latency_ms = None
    if row.finished_at is not None:
        latency_ms = round((row.finished_at - row.created_at).total_seconds() * 1000)
    outs = [step_out(s) for s in steps] if steps is not None else None
    synthesis = row.synthesis or None
    answered_by = _answered_by(row, steps or [])
    return JobOut(
        id=row.id,
        kind=cast(Kind, row.kind),
        status=JobStatus(row.status),
        priority=row.priority,
        batch_id=None,
        custom_id=row.custom_id,
        model=[],
        served_model=answered_by.served_model if answered_by else None,
        provider=answered_by.provider if answered_by else None,
        result=result,
        usage=Usage(
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            total_tokens=row.input_tokens + row.output_tokens,
        ),
        cost_usd=format_usd(row.cost_usd),
        latency_ms=latency_ms,
        attempt_count=sum(s.attempt_count for s in steps or []),
        attempts=None,
        error=error,
        project=row.project,
        metadata=row.metadata_ or {},
        created_at=row.created_at,
        queued_at=row.created_at,
        started_at=min((s.started_at for s in steps or [] if s.started_at), default=None),
        finished_at=row.finished_at,
        steps=outs,
        synthesis=synthesis,
    )


def _answered_by(row: OrchestrationRow, steps: list[JobOut]) -> JobOut | None:
    """The step whose answer is the orchestration's: a chain's output step, an ensemble's
    winning branch, or its judge when the judge wrote the answer."""
    synthesis = row.synthesis or {}
    if row.status != JobStatus.SUCCEEDED or not steps:
        return None
    by_role = {s.parent.role: s for s in steps if s.parent is not None}
    if row.kind == "chain":
        return by_role.get(str(synthesis.get("output")))
    if synthesis.get("mode") == "merge":
        return by_role.get("judge")
    winner = synthesis.get("winner")
    return next((s for s in steps if s.parent and s.parent.step_index == winner), None)
