"""Submitting a batch, following it, and reading its results joined on ``custom_id``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.batches.input import BatchRequest
from app.budgets.service import applicable, reserve
from app.budgets.worst_case import worst_case_usd
from app.constants import DEFAULT_TENANT, Priority
from app.db.tables import BatchRow, JobRow, batches
from app.errors import Conflict, InvalidInput, NotFound
from app.ids import batch_id as new_batch_id
from app.jobs.schemas import ChatParams
from app.jobs.service import (
    JobRef,
    first_usable,
    insert_jobs,
    job_values,
    request_hash,
)
from app.jobs.states import TERMINAL, BatchStatus
from app.policies.rules import Policy
from app.registry.service import ModelInfo, Registry
from app.routing.plan import PerformanceSource, Plan, PolicySource, plan_chain

COMPLETION_WINDOWS = {"24h": timedelta(hours=24)}
CHAT_ENDPOINT = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class BatchOptions:
    endpoint: str = CHAT_ENDPOINT
    completion_window: str = "24h"
    priority: Priority = Priority.LOW
    metadata: dict[str, str] | None = None
    project: str | None = None
    webhook_url: str | None = None
    notify: bool = False  # a webhook (the batch's or the tenant's) applies: see JobRow.notify


@dataclass(frozen=True, slots=True)
class SubmittedBatch:
    batch: BatchRow
    job_ids: list[str]
    refs: list[JobRef]
    created: bool


def submit_batch(
    session: Session,
    requests: Sequence[BatchRequest],
    registry: Registry,
    options: BatchOptions,
    *,
    tenant_id: str = DEFAULT_TENANT,
    idempotency_key: str | None = None,
    line_numbers: Sequence[int] | None = None,
    usable: Callable[[ModelInfo], bool] | None = None,
    performance: PerformanceSource | None = None,
    policies: Callable[[], Sequence[Policy]] | None = None,
) -> SubmittedBatch:
    """Insert the batch and all its jobs as queued; every request is checked before any insert."""
    if options.endpoint != CHAT_ENDPOINT:
        raise InvalidInput(
            f"endpoint {options.endpoint!r} is not supported; use {CHAT_ENDPOINT!r}",
            code="unsupported_endpoint",
            param="endpoint",
        )
    window = COMPLETION_WINDOWS.get(options.completion_window)
    if window is None:
        raise InvalidInput(
            "completion_window must be '24h'", code="invalid_request", param="completion_window"
        )
    source = PolicySource(policies, tenant_id) if policies is not None else None
    plans = _resolve_all(registry, requests, line_numbers, performance, usable, source)
    digest = request_hash(
        {
            "requests": [
                [r.params.model_dump(mode="json", exclude_none=True), r.custom_id, r.metadata]
                for r in requests
            ],
            "options": [
                options.endpoint,
                options.completion_window,
                options.priority.value,
                options.metadata,
                options.project,
            ],
        }
    )
    now = datetime.now(UTC)
    batch_values: dict[str, Any] = {
        "id": new_batch_id(),
        "tenant_id": tenant_id,
        "status": BatchStatus.IN_PROGRESS.value,
        "endpoint": options.endpoint,
        "completion_window": options.completion_window,
        "priority": options.priority.value,
        "metadata": options.metadata or {},
        "project": options.project,
        "webhook_url": options.webhook_url,
        "idempotency_key": idempotency_key,
        "request_hash": digest,
        "total": len(requests),
        "created_at": now,
        "in_progress_at": now,
        "expires_at": now + window,
    }
    stmt = insert(batches).values(batch_values)
    if idempotency_key is not None:
        stmt = stmt.on_conflict_do_nothing(
            index_elements=[batches.c.tenant_id, batches.c.idempotency_key],
            index_where=batches.c.idempotency_key.is_not(None),
        )
    inserted = session.execute(stmt.returning(batches.c.id)).scalar_one_or_none()
    if inserted is None:
        return _existing(session, tenant_id, idempotency_key, digest)

    distinct = {id(p.chain): p.chain for p in plans}  # identical model lists share a chain
    starts = {key: first_usable(chain, usable) for key, chain in distinct.items()}
    rows = [
        job_values(
            r.params,
            plan.chain,
            now=now,
            priority=options.priority,
            tenant_id=tenant_id,
            deadline_s=window.total_seconds(),
            custom_id=r.custom_id,
            metadata=r.metadata,
            batch_id=batch_values["id"],
            project=options.project,
            start=starts[id(plan.chain)],
            routing=plan.routing,
            notify=options.notify,
        )
        for r, plan in zip(requests, plans, strict=True)
    ]
    _hold_budget(session, rows, [p.chain for p in plans], tenant_id, options.project, now)
    insert_jobs(session, rows)
    batch = session.get_one(BatchRow, batch_values["id"])
    refs = [JobRef(r["id"], r["provider"], r["priority"]) for r in rows]
    return SubmittedBatch(batch, [r["id"] for r in rows], refs, created=True)


def _hold_budget(
    session: Session,
    rows: list[dict[str, Any]],
    chains: list[list[ModelInfo]],
    tenant_id: str,
    project: str | None,
    now: datetime,
) -> None:
    """Reserve every job's worst case at once: the whole batch fits its budgets, or none of
    it is accepted."""
    if not applicable(session, tenant_id, project):
        return
    amounts = [worst_case_usd(r["request"], c) for r, c in zip(rows, chains, strict=True)]
    holds = reserve(session, tenant_id, project, amounts, now=now)
    if holds is not None:
        for row, job_holds in zip(rows, holds, strict=True):
            row["budget_holds"] = job_holds


def _resolve_all(
    registry: Registry,
    requests: Sequence[BatchRequest],
    line_numbers: Sequence[int] | None,
    performance: PerformanceSource | None,
    usable: Callable[[ModelInfo], bool] | None,
    policies: PolicySource | None = None,
) -> list[Plan]:
    """Each request's fallback chain; identical model lists are resolved once (a strategy
    request is routed on its own: its cost depends on its own tokens)."""
    cache: dict[tuple[str, ...], Plan] = {}
    plans = []
    for i, request in enumerate(requests):
        key = tuple(request.params.model_chain)
        plan = cache.get(key) if key else None
        if plan is None:
            line = line_numbers[i] if line_numbers is not None else None
            try:
                plan = plan_chain(
                    registry,
                    request.params,
                    performance=performance,
                    usable=usable,
                    param=_model_param(request.params, i, line),
                    policies=policies,
                    metadata=request.metadata,
                )
            except InvalidInput as err:
                if line is not None:
                    err.line = line
                    err.message = f"line {line}: {err.message}"
                    err.args = (err.message,)
                raise
            if key:
                cache[key] = plan
        plans.append(plan)
    return plans


def _model_param(params: ChatParams, index: int, line: int | None) -> str:
    return "model" if line is not None else f"requests[{index}].model"


def _existing(session: Session, tenant_id: str, key: str | None, digest: str) -> SubmittedBatch:
    batch = session.scalars(
        select(BatchRow).where(BatchRow.tenant_id == tenant_id, BatchRow.idempotency_key == key)
    ).one()
    if batch.request_hash != digest:
        raise Conflict(
            "this Idempotency-Key was used for a different batch", code="idempotency_key_reused"
        )
    ids = list(
        session.scalars(select(JobRow.id).where(JobRow.batch_id == batch.id).order_by(JobRow.id))
    )
    return SubmittedBatch(batch, ids, [], created=False)


def get_batch(session: Session, batch_id: str, *, tenant_id: str | None) -> BatchRow:
    """The batch, if it exists and belongs to ``tenant_id`` (``None``: any tenant's)."""
    batch = session.get(BatchRow, batch_id)
    if batch is None or (tenant_id is not None and batch.tenant_id != tenant_id):
        raise NotFound(f"no batch {batch_id!r}", code="batch_not_found")
    return batch


def _unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def batch_object(batch: BatchRow, *, job_ids: list[str] | None = None) -> dict[str, Any]:
    """The batch in OpenAI's shape (unix-second timestamps, ``request_counts``, ``usage``)."""
    body: dict[str, Any] = {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "model": None,
        "errors": batch.errors,
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": batch.status,
        "output_file_id": None,
        "error_file_id": None,
        "created_at": _unix(batch.created_at),
        "in_progress_at": _unix(batch.in_progress_at),
        "expires_at": _unix(batch.expires_at),
        "finalizing_at": _unix(batch.finalizing_at),
        "completed_at": _unix(batch.completed_at),
        "failed_at": _unix(batch.failed_at),
        "expired_at": _unix(batch.expired_at),
        "cancelling_at": _unix(batch.cancelling_at),
        "cancelled_at": _unix(batch.cancelled_at),
        "request_counts": {
            "total": batch.total,
            "completed": batch.succeeded,
            "failed": batch.failed,
        },
        "usage": {
            "input_tokens": batch.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": batch.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": batch.input_tokens + batch.output_tokens,
        },
        "metadata": batch.metadata_ or None,
        "priority": batch.priority,
        "cost_usd": _money(batch.cost_usd),
    }
    if job_ids is not None:
        body["job_ids"] = job_ids
    return body


def _money(value: Any) -> str:
    from app.ledger.cost import format_usd

    return format_usd(value) or "0"


_TERMINAL = [s.value for s in TERMINAL]


def result_page(
    session: Session, batch_id: str, *, after: str | None, limit: int
) -> tuple[list[JobRow], bool]:
    """Finished jobs of the batch in id order, after the cursor; and whether more follow."""
    query = (
        select(JobRow)
        .where(JobRow.batch_id == batch_id, JobRow.status.in_(_TERMINAL))
        .order_by(JobRow.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(JobRow.id > after)
    rows = list(session.scalars(query))
    return rows[:limit], len(rows) > limit


def iter_results(session: Session, batch_id: str, chunk: int = 1000) -> Iterator[JobRow]:
    after: str | None = None
    while True:
        rows, more = result_page(session, batch_id, after=after, limit=chunk)
        yield from rows
        if not more or not rows:
            return
        after = rows[-1].id
        session.expunge_all()


def output_line(job: JobRow) -> dict[str, Any]:
    """One line of the batch's output, as OpenAI writes it: join on ``custom_id``."""
    if job.status == "succeeded" and job.result is not None:
        result = job.result
        message: dict[str, Any] = {"role": "assistant", "content": result.get("text")}
        if result.get("tool_calls"):
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for c in result["tool_calls"]
            ]
        body = {
            "id": result.get("response_id") or job.id,
            "object": "chat.completion",
            "created": _unix(job.finished_at),
            "model": job.served_model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": result.get("finish_reason")}
            ],
            "usage": {
                "prompt_tokens": job.input_tokens,
                "completion_tokens": job.output_tokens,
                "total_tokens": (job.input_tokens or 0) + (job.output_tokens or 0),
            },
        }
        return {
            "id": job.id,
            "custom_id": job.custom_id,
            "response": {"status_code": 200, "request_id": job.id, "body": body},
            "error": None,
            "cost_usd": _money(job.cost_usd),
        }
    return {
        "id": job.id,
        "custom_id": job.custom_id,
        "response": None,
        "error": {
            "code": job.error_class or job.status,
            "message": job.error_message or job.status,
        },
    }
