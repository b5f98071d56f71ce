"""Orchestrations in Postgres: submitting one with its first steps, reading, cancelling.

Services take the session first and never commit (the endpoint's unit of work does); what
must be published is returned, to go out after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.budgets.service import reserve
from app.db.tables import JobRow, OrchestrationRow, orchestrations
from app.errors import Conflict, NotFound
from app.ids import new_id
from app.jobs.schemas import JobOptions
from app.jobs.service import JobRef, request_hash
from app.jobs.states import JobStatus
from app.ledger.record import Cancelled, record
from app.orchestration import chain
from app.orchestration.ensemble import BRANCH
from app.orchestration.plans import Planned
from app.orchestration.progress import lock, release_holds
from app.orchestration.steps import Lineage, NewStep, insert_steps

PREFIXES = ("chain_", "ensemble_")


def is_orchestration_id(value: str) -> bool:
    """Whether an id (``GET /v1/jobs/{id}``) names a chain or an ensemble."""
    return value.startswith(PREFIXES)


@dataclass(frozen=True, slots=True)
class Submitted:
    row: OrchestrationRow
    created: bool
    step_ids: list[str]
    publish: list[JobRef]  # queued steps, to publish after the commit
    delayed: list[tuple[str, float]]  # hedged branches: (job id, not-before unix seconds)


def submit_orchestration(
    session: Session,
    planned: Planned,
    options: JobOptions,
    *,
    tenant_id: str,
    default_deadline_s: float,
    payload: dict[str, Any],
    idempotency_key: str | None = None,
    notify: bool = False,
    steps_notify: bool = False,
) -> Submitted:
    """Insert a planned orchestration and its first steps, reserving every step's worst case
    (``BudgetExceeded``, and nothing written, if a budget has no room); or find the one an
    earlier call with the same Idempotency-Key made."""
    now = datetime.now(UTC)
    digest = request_hash({"kind": planned.kind, **payload})
    deadline_at = now + timedelta(seconds=options.deadline_s or default_deadline_s)
    spec = {**planned.spec, "steps_notify": steps_notify}
    stmt = insert(orchestrations).values(
        id=new_id(planned.kind),
        tenant_id=tenant_id,
        kind=planned.kind,
        status=JobStatus.RUNNING.value,
        priority=options.priority.value,
        spec=spec,
        metadata=options.metadata or {},
        project=options.project,
        custom_id=options.custom_id,
        webhook_url=options.webhook_url,
        notify=notify,
        idempotency_key=idempotency_key,
        request_hash=digest,
        created_at=now,
        deadline_at=deadline_at,
    )
    if idempotency_key is not None:
        stmt = stmt.on_conflict_do_nothing(
            index_elements=[orchestrations.c.tenant_id, orchestrations.c.idempotency_key],
            index_where=orchestrations.c.idempotency_key.is_not(None),
        )
    inserted = session.execute(stmt.returning(orchestrations.c.id)).scalar_one_or_none()
    if inserted is None:
        return _existing(session, tenant_id, idempotency_key, digest)
    holds = reserve(session, tenant_id, options.project, planned.worst_usd, now=now)
    first = _first_steps(planned, spec, now)
    if holds is not None:
        started = {step.index for step in first}
        pending = {str(i): h for i, h in enumerate(holds) if i not in started}
        first = [replace(step, holds=holds[step.index]) for step in first]
        if pending:
            session.execute(
                update(orchestrations)
                .where(orchestrations.c.id == inserted)
                .values(pending_holds=pending)
            )
    lineage = Lineage(
        id=inserted,
        tenant_id=tenant_id,
        priority=options.priority.value,
        project=options.project,
        metadata=options.metadata or {},
        deadline_at=deadline_at,
        notify=steps_notify,
    )
    made = insert_steps(_raw(session), lineage, first)
    waiting = {step.index: step.not_before for step in first if step.not_before is not None}
    publish, delayed = [], []
    for step, (job_id, ref) in zip(first, made, strict=True):
        not_before = waiting.get(step.index)
        if not_before is None:
            publish.append(ref)
        else:
            delayed.append((job_id, not_before.timestamp()))
    row = session.get_one(OrchestrationRow, inserted)
    return Submitted(row, True, [job_id for job_id, _ in made], publish, delayed)


def _first_steps(planned: Planned, spec: dict[str, Any], now: datetime) -> list[NewStep]:
    """What runs at once: a chain's first step; an ensemble's branches (hedged ones waiting
    their turn)."""
    if planned.kind == "chain":
        step = chain.new_step(spec, 0, {})
        return [replace(step, start=step.plan.get("start", 0))]
    hedge = spec.get("hedge_after_s")
    return [
        NewStep(
            index=i,
            role=BRANCH,
            request=branch["request"],
            plan=branch["plan"],
            start=branch["plan"].get("start", 0),
            not_before=now + timedelta(seconds=hedge * i) if hedge and i else None,
        )
        for i, branch in enumerate(spec["branches"])
    ]


def _existing(
    session: Session, tenant_id: str, idempotency_key: str | None, digest: str
) -> Submitted:
    row = session.scalars(
        select(OrchestrationRow).where(
            OrchestrationRow.tenant_id == tenant_id,
            OrchestrationRow.idempotency_key == idempotency_key,
        )
    ).one()
    if row.request_hash != digest:
        raise Conflict(
            "this Idempotency-Key was used for a different request",
            code="idempotency_key_reused",
        )
    return Submitted(row, False, [s.id for s in steps_of(session, row.id)], [], [])


def get_orchestration(
    session: Session, orchestration_id: str, *, tenant_id: str | None
) -> OrchestrationRow:
    """The chain or ensemble, if it exists and belongs to ``tenant_id`` (None: anyone's)."""
    row = session.get(OrchestrationRow, orchestration_id)
    if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
        raise NotFound(f"no job {orchestration_id!r}", code="job_not_found")
    return row


def steps_of(session: Session, orchestration_id: str) -> list[JobRow]:
    return list(
        session.scalars(
            select(JobRow)
            .where(JobRow.parent_id == orchestration_id)
            .order_by(JobRow.step_index, JobRow.id)
        )
    )


def list_orchestrations(
    session: Session,
    kind: str,
    *,
    tenant_id: str | None,
    status: JobStatus | None = None,
    after: str | None = None,
    limit: int = 100,
) -> tuple[list[OrchestrationRow], bool]:
    """Newest first (ids sort by creation time); ``after`` is the last id of the page before."""
    query = select(OrchestrationRow).where(OrchestrationRow.kind == kind)
    if tenant_id is not None:
        query = query.where(OrchestrationRow.tenant_id == tenant_id)
    if status is not None:
        query = query.where(OrchestrationRow.status == status.value)
    if after is not None:
        query = query.where(OrchestrationRow.id < after)
    rows = list(session.scalars(query.order_by(OrchestrationRow.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def cancel_orchestration(
    session: Session, orchestration_id: str, *, tenant_id: str | None
) -> tuple[OrchestrationRow, list[JobRow]]:
    """Cancel a running chain or ensemble: its steps no worker holds are cancelled, no later
    step is started, and the reservations of steps never created are released. A step being
    served finishes (and is billed). The steps this call cancelled come back with it."""
    get_orchestration(session, orchestration_id, tenant_id=tenant_id)
    raw = _raw(session)
    lock(raw, orchestration_id)
    session.expire_all()
    row = get_orchestration(session, orchestration_id, tenant_id=tenant_id)
    if row.status == JobStatus.CANCELLED:
        return row, []
    if row.status != JobStatus.RUNNING:
        raise Conflict(
            f"job {orchestration_id!r} is {row.status}: it has ended", code="job_finished"
        )
    release_holds(raw, row.pending_holds or {})
    session.execute(
        update(orchestrations)
        .where(orchestrations.c.id == orchestration_id)
        .values(status=JobStatus.CANCELLED.value, finished_at=datetime.now(UTC), pending_holds={})
    )
    cancelled = []
    for step in steps_of(session, orchestration_id):
        only = (JobStatus.QUEUED.value, JobStatus.WAITING.value)
        if step.status in only and record(raw, step.id, Cancelled(), only_from=only).moved:
            cancelled.append(step)
    session.expire_all()
    return get_orchestration(session, orchestration_id, tenant_id=tenant_id), cancelled


def _raw(session: Session) -> psycopg.Connection[Any]:
    raw = session.connection().connection.driver_connection
    assert raw is not None
    return raw  # type: ignore[no-any-return]
