"""Submitting a batch. Services take the session first and never commit.

Inline requests (JSON or JSONL) and uploaded files are one mechanism: each source is read
into a ``BatchInput`` (app/batches/input.py) and submitted here. An inline source with a bad
request is refused whole (a 400, nothing written); a file with bad lines becomes a ``failed``
batch listing every one of them in ``errors``, as OpenAI does — with no job queued.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.batches.input import BatchInput, BatchRequest, at_line, joined
from app.batches.kinds import CHAT_ENDPOINT, endpoint_kind
from app.budgets.service import applicable, reserve
from app.budgets.worst_case import worst_case_usd
from app.constants import DEFAULT_TENANT, Priority
from app.db.tables import BatchRow, JobRow, batches, files
from app.errors import Conflict, InvalidInput
from app.ids import batch_id as new_batch_id
from app.ids import file_id as new_file_id
from app.jobs.service import (
    CacheStep,
    JobRef,
    first_usable,
    insert_jobs,
    job_values,
    request_hash,
)
from app.jobs.states import BatchStatus, JobStatus
from app.ledger.record import BATCH_EVENT
from app.policies.rules import Policy
from app.registry.service import ModelInfo, Registry
from app.routing.capabilities import needs_of
from app.routing.plan import PerformanceSource, Plan, PolicySource, plan_chain

COMPLETION_WINDOWS = {"24h": timedelta(hours=24)}
QUEUED = JobStatus.QUEUED.value
# A failed batch lists this many line errors, then says how many more there were.
MAX_LISTED_ERRORS = 100


@dataclass(frozen=True, slots=True)
class BatchOptions:
    endpoint: str = CHAT_ENDPOINT
    completion_window: str = "24h"
    priority: Priority = Priority.LOW
    metadata: dict[str, str] | None = None
    project: str | None = None
    webhook_url: str | None = None
    notify: bool = False  # a webhook (the batch's or the tenant's) applies: see JobRow.notify
    input_file_id: str | None = None  # the requests come from this uploaded file
    output_expires_after_s: int | None = None  # output and error files expire this long after


@dataclass(frozen=True, slots=True)
class SubmittedBatch:
    batch: BatchRow
    job_ids: list[str]
    refs: list[JobRef]
    created: bool


@dataclass(frozen=True, slots=True)
class _Planned:
    plans: list[Plan]
    errors: list[InvalidInput]


def submit_batch(
    session: Session,
    read: BatchInput,
    registry: Registry,
    options: BatchOptions,
    *,
    tenant_id: str = DEFAULT_TENANT,
    idempotency_key: str | None = None,
    usable: Callable[[ModelInfo], bool] | None = None,
    performance: PerformanceSource | None = None,
    policies: Callable[[], Sequence[Policy]] | None = None,
    cache: CacheStep | None = None,
) -> SubmittedBatch:
    """Insert the batch and all its jobs as queued; every request is checked before any insert.

    For a file (``options.input_file_id``), lines that could not be read or routed make the
    batch ``failed`` with their errors instead. With ``cache``, the response cache may serve
    some jobs at once and make repeats wait for their first occurrence."""
    endpoint_kind(options.endpoint)
    window = COMPLETION_WINDOWS.get(options.completion_window)
    if window is None:
        raise InvalidInput(
            "completion_window must be '24h'", code="invalid_request", param="completion_window"
        )
    from_file = options.input_file_id is not None
    source = PolicySource(policies, tenant_id) if policies is not None else None
    planned = _resolve_all(registry, read, performance, usable, source, collect=from_file)
    errors = sorted(read.errors + planned.errors, key=lambda e: e.line or 0)
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": new_batch_id(),
        "tenant_id": tenant_id,
        "endpoint": options.endpoint,
        "completion_window": options.completion_window,
        "priority": options.priority.value,
        "metadata": options.metadata or {},
        "project": options.project,
        "webhook_url": options.webhook_url,
        "input_file_id": options.input_file_id,
        "idempotency_key": idempotency_key,
        "request_hash": _digest(read.requests, options),
        "created_at": now,
        "expires_at": now + window,
    }
    if errors:
        values.update(status=BatchStatus.FAILED.value, total=0, failed_at=now)
        values["errors"] = {"object": "list", "data": _listed(errors)}
    else:
        values.update(
            status=BatchStatus.IN_PROGRESS.value,
            total=len(read.requests),
            in_progress_at=now,
            output_file_id=new_file_id(),
            error_file_id=new_file_id(),
        )
    stmt = insert(batches).values(values)
    if idempotency_key is not None:
        stmt = stmt.on_conflict_do_nothing(
            index_elements=[batches.c.tenant_id, batches.c.idempotency_key],
            index_where=batches.c.idempotency_key.is_not(None),
        )
    inserted = session.execute(stmt.returning(batches.c.id)).scalar_one_or_none()
    if inserted is None:
        return _existing(session, tenant_id, idempotency_key, values["request_hash"])
    if errors:
        _failed_event(session, inserted)
        return SubmittedBatch(session.get_one(BatchRow, inserted), [], [], created=True)

    plans = planned.plans
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
            batch_id=inserted,
            project=options.project,
            start=starts[id(plan.chain)],
            routing=plan.routing,
            notify=options.notify,
        )
        for r, plan in zip(read.requests, plans, strict=True)
    ]
    chains = [p.chain for p in plans]
    if cache is not None:
        cache.consult(session, rows, [r.params for r in read.requests])
        chains = [c for r, c in zip(rows, chains, strict=True) if not cache.served(r)]
    budgeted = [r for r in rows if cache is None or not cache.served(r)]
    _hold_budget(session, budgeted, chains, tenant_id, options.project, now)
    insert_jobs(session, rows)
    _output_files(session, values, options)
    refs = [JobRef(r["id"], r["provider"], r["priority"]) for r in rows if r["status"] == QUEUED]
    if cache is not None:
        deadline_s = window.total_seconds()
        refs += cache.apply(
            session,
            project=options.project,
            priority=options.priority.value,
            deadline_s=deadline_s,
            now=now,
            batch_id=inserted,
        )
    batch = session.get_one(BatchRow, inserted)
    return SubmittedBatch(batch, [r["id"] for r in rows], refs, created=True)


def _digest(requests: Sequence[BatchRequest], options: BatchOptions) -> str:
    """What an Idempotency-Key must be reused with: the same requests (a file's are its id:
    an uploaded file never changes) and the same options."""
    listed = (
        {"input_file_id": options.input_file_id}
        if options.input_file_id is not None
        else [
            [r.params.model_dump(mode="json", exclude_none=True), r.custom_id, r.metadata]
            for r in requests
        ]
    )
    return request_hash(
        {
            "requests": listed,
            "options": [
                options.endpoint,
                options.completion_window,
                options.priority.value,
                options.metadata,
                options.project,
                options.output_expires_after_s,
            ],
        }
    )


def _listed(errors: list[InvalidInput]) -> list[dict[str, Any]]:
    data = [
        {"code": e.code, "message": e.message, "param": e.param, "line": e.line}
        for e in errors[:MAX_LISTED_ERRORS]
    ]
    if len(errors) > MAX_LISTED_ERRORS:
        more = len(errors) - MAX_LISTED_ERRORS
        data.append(
            {
                "code": "too_many_errors",
                "message": f"{more} more line(s) have errors; fix the ones listed and retry",
                "param": None,
                "line": None,
            }
        )
    return data


def _output_files(session: Session, batch: dict[str, Any], options: BatchOptions) -> None:
    """The batch's output and error files, named now, shown once the batch has ended."""
    rows = [
        {
            "id": batch[f"{kind}_file_id"],
            "tenant_id": batch["tenant_id"],
            "purpose": "batch_output",
            "kind": kind,
            "filename": f"{batch['id']}_{kind}.jsonl",
            "batch_id": batch["id"],
            "expires_after_s": options.output_expires_after_s,
            "created_at": batch["created_at"],
        }
        for kind in ("output", "error")
    ]
    session.execute(insert(files), rows)


_FAILED_EVENT = text(
    "WITH b AS (SELECT id, tenant_id, webhook_url, status, true AS ended FROM batches "
    "WHERE id = :batch_id)" + BATCH_EVENT + " SELECT id FROM eb"
)
# No worker publishes these: the outbox sweep sends them on its next pass, rather than after
# the grace it gives events it believes are queued.
_PUBLISH_NOW = text("UPDATE webhook_events SET published_at = NULL WHERE id = ANY(:ids)")


def _failed_event(session: Session, batch_id: str) -> None:
    """``batch.failed`` to the batch's (or tenant's) webhook, in the batch's transaction."""
    ids = list(session.scalars(_FAILED_EVENT, {"batch_id": batch_id}))
    if ids:
        session.execute(_PUBLISH_NOW, {"ids": ids})


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
    read: BatchInput,
    performance: PerformanceSource | None,
    usable: Callable[[ModelInfo], bool] | None,
    policies: PolicySource | None,
    *,
    collect: bool,
) -> _Planned:
    """Each request's fallback chain; identical model lists asked for the same capabilities
    are resolved once (a strategy request is routed on its own: its cost depends on its own
    tokens). Without ``collect`` the first request that cannot be routed is raised."""
    cache: dict[tuple[str, ...], Plan] = {}
    planned = _Planned([], [])
    for i, request in enumerate(read.requests):
        chain = tuple(request.params.model_chain)
        key = (*chain, "|", *needs_of(request.params).key) if chain else ()
        plan = cache.get(key) if key else None
        if plan is None:
            line = read.lines[i] if read.lines is not None else None
            try:
                plan = plan_chain(
                    registry,
                    request.params,
                    performance=performance,
                    usable=usable,
                    param=joined(request.where, "model"),
                    policies=policies,
                    metadata=request.metadata,
                )
            except InvalidInput as err:
                if not collect:
                    raise at_line(err, line) from None
                planned.errors.append(at_line(err, line))
                continue
            if key:
                cache[key] = plan
        planned.plans.append(plan)
    return planned


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
