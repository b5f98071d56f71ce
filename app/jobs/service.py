"""Submitting jobs and reading them back. Services take the session first and never commit."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.budgets.service import reserve
from app.budgets.worst_case import worst_case_usd
from app.constants import DEFAULT_TENANT, Priority
from app.db.tables import AttemptRow, JobRow, jobs
from app.embeddings.schemas import EmbeddingJobCreate
from app.errors import Conflict, InvalidInput, NotFound
from app.ids import job_id as new_job_id
from app.jobs.schemas import JobCreate, RoutedRequest
from app.jobs.states import JobStatus
from app.ledger.record import Cancelled, record
from app.policies.rules import Policy
from app.registry.service import ModelInfo, Registry
from app.relay.publisher import AWAITED_FLAG
from app.routing.capabilities import SERVES, needs_of, shortfall
from app.routing.plan import PerformanceSource, PolicySource, plan_chain


@dataclass(frozen=True, slots=True)
class JobRef:
    """What a queue message points at: a job, and the queue it belongs on."""

    id: str
    provider: str
    priority: str


class Dispatcher(Protocol):
    """Publishes queue messages for jobs whose rows are committed."""

    def publish(self, refs: Sequence[JobRef]) -> None: ...


def resolve_chain(
    registry: Registry, params: RoutedRequest, param: str = "model"
) -> list[ModelInfo]:
    """The job's models, in fallback order, each known, enabled and able to serve the
    request: what it asks for (chat, or embeddings) and what its body needs (tools, images,
    a JSON response format; see ``app.routing.capabilities``)."""
    chain: list[ModelInfo] = []
    names = params.model_chain
    needs = needs_of(params)
    for i, name in enumerate(names):
        where = param if isinstance(params.model, str) else f"{param}[{i}]"
        model = registry.model(name, param=where)
        if params.capability not in model.capabilities:
            raise InvalidInput(
                f"model {name!r} does not serve {SERVES[params.capability]}",
                code="unsupported_model",
                param=where,
            )
        problem = shortfall(needs, model, registry)
        if problem is not None:
            raise InvalidInput(
                f"model {name!r} cannot serve this request: {problem}",
                code="unsupported_capability",
                param=where,
            )
        chain.append(model)
    if len({m.id for m in chain}) != len(chain):
        raise InvalidInput("a model appears twice in the fallback list", param=param)
    return chain


def first_usable(chain: list[ModelInfo], usable: Callable[[ModelInfo], bool] | None) -> int:
    """Where a new job starts: the first model of its chain not behind an open breaker, or
    the first one if every model is (its breaker will let a probe through)."""
    if usable is None:
        return 0
    return next((i for i, model in enumerate(chain) if usable(model)), 0)


def request_hash(payload: Any) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def job_values(
    params: RoutedRequest,
    chain: list[ModelInfo],
    *,
    now: datetime,
    priority: Priority,
    tenant_id: str,
    deadline_s: float,
    custom_id: str | None = None,
    metadata: dict[str, str] | None = None,
    batch_id: str | None = None,
    project: str | None = None,
    start: int = 0,
    routing: dict[str, Any] | None = None,
    notify: bool = False,
    awaited: bool = False,
) -> dict[str, Any]:
    """The row for a new queued job (shared by single submissions and batches); an
    ``awaited`` job's caller waits on the request, and hears of its end (``app.relay``)."""
    request = params.to_request()
    if awaited:
        request[AWAITED_FLAG] = True
    return {
        "id": new_job_id(),
        "tenant_id": tenant_id,
        "batch_id": batch_id,
        "custom_id": custom_id,
        "kind": params.kind,
        "status": JobStatus.QUEUED.value,
        "priority": priority.value,
        "request": request,
        "models": [m.id for m in chain],
        "chain_index": start,
        "provider": chain[start].provider,
        "metadata": metadata or {},
        "project": project,
        "notify": notify,
        "created_at": now,
        "queued_at": now,
        "deadline_at": now + timedelta(seconds=deadline_s),
        "routing": routing,
    }


_COPY_COLUMNS = (
    "id",
    "tenant_id",
    "batch_id",
    "custom_id",
    "kind",
    "status",
    "priority",
    "request",
    "models",
    "chain_index",
    "provider",
    "metadata",
    "project",
    "notify",
    "budget_holds",
    "created_at",
    "queued_at",
    "deadline_at",
    "routing",
    "cache",
)
_JSON_COLUMNS = frozenset({"request", "metadata", "budget_holds", "routing"})


def insert_jobs(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many new jobs in this session's transaction with one COPY (batches).

    Each row is what ``job_values`` made. COPY is several times faster than multi-row INSERTs
    here, and it runs inside the session's transaction, so a batch is still all or nothing.
    """
    columns = ", ".join(_COPY_COLUMNS)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY jobs ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    orjson.dumps(row[c]).decode()
                    if c in _JSON_COLUMNS and row.get(c) is not None
                    else row.get(c)
                    for c in _COPY_COLUMNS
                ]
            )


class CacheStep(Protocol):
    """The response cache's part in a submission (app/cache/lookup.py): ``consult`` before
    the rows are inserted (it may make some ``waiting`` and add its directive to their
    requests), ``apply`` after; ``served`` jobs are answered as they are inserted and reserve
    no budget. ``apply`` returns more jobs to publish (the semantic lookups)."""

    def consult(
        self, session: Session, rows: Sequence[dict[str, Any]], params: Sequence[RoutedRequest]
    ) -> None: ...

    def served(self, row: dict[str, Any]) -> bool: ...

    def apply(
        self,
        session: Session,
        *,
        project: str | None,
        priority: str,
        deadline_s: float,
        now: datetime,
        batch_id: str | None = None,
    ) -> list[JobRef]: ...


@dataclass(frozen=True, slots=True)
class Submitted:
    job: JobRow
    created: bool
    also: tuple[JobRef, ...] = ()  # more new jobs to publish (the cache's semantic lookups)

    @property
    def ref(self) -> JobRef:
        return JobRef(self.job.id, self.job.provider, self.job.priority)

    @property
    def to_publish(self) -> list[JobRef]:
        """What to publish once committed: the job if it is queued (not served from the
        cache, nor waiting for another job), and the jobs submitted with it."""
        if not self.created:
            return []
        own = [self.ref] if self.job.status == JobStatus.QUEUED else []
        return own + list(self.also)


def submit_job(
    session: Session,
    spec: JobCreate | EmbeddingJobCreate,
    registry: Registry,
    *,
    default_deadline_s: float,
    tenant_id: str = DEFAULT_TENANT,
    idempotency_key: str | None = None,
    usable: Callable[[ModelInfo], bool] | None = None,
    performance: PerformanceSource | None = None,
    policies: Callable[[], Sequence[Policy]] | None = None,
    notify: bool = False,
    awaited: bool = False,
    cache: CacheStep | None = None,
) -> Submitted:
    """Insert one queued chat or embedding job, or find the one an earlier call with the same
    key created; ``awaited``: its caller waits on the request for its end.

    A new job reserves its worst-case cost against the budgets that apply to it; with no
    room, ``BudgetExceeded`` and nothing is written (the caller's transaction rolls back).
    With ``cache``, the response cache may serve it at once or make it wait for another."""
    plan = plan_chain(
        registry,
        spec,
        performance=performance,
        usable=usable,
        policies=PolicySource(policies, tenant_id) if policies is not None else None,
        metadata=spec.metadata,
    )
    chain = plan.chain
    now = datetime.now(UTC)
    values = job_values(
        spec,
        chain,
        now=now,
        priority=spec.priority,
        tenant_id=tenant_id,
        deadline_s=spec.deadline_s or default_deadline_s,
        custom_id=spec.custom_id,
        metadata=spec.metadata,
        project=spec.project,
        start=first_usable(chain, usable),
        routing=plan.routing,
        notify=notify,
        awaited=awaited,
    )
    digest = request_hash(spec.model_dump(mode="json", exclude_none=True))
    values.update(
        idempotency_key=idempotency_key, request_hash=digest, webhook_url=spec.webhook_url
    )
    if cache is not None:
        cache.consult(session, [values], [spec])
    stmt = insert(jobs).values(values)
    if idempotency_key is not None:
        stmt = stmt.on_conflict_do_nothing(
            index_elements=[jobs.c.tenant_id, jobs.c.idempotency_key],
            index_where=jobs.c.idempotency_key.is_not(None),
        )
    inserted = session.execute(stmt.returning(jobs.c.id)).scalar_one_or_none()
    if inserted is None:
        existing = session.scalars(
            select(JobRow).where(
                JobRow.tenant_id == tenant_id, JobRow.idempotency_key == idempotency_key
            )
        ).one()
        if existing.request_hash != digest:
            raise Conflict(
                "this Idempotency-Key was used for a different request",
                code="idempotency_key_reused",
            )
        return Submitted(existing, created=False)
    if cache is None or not cache.served(values):
        holds = reserve(
            session, tenant_id, spec.project, [worst_case_usd(values["request"], chain)], now=now
        )
        if holds is not None:
            session.execute(update(jobs).where(jobs.c.id == inserted).values(budget_holds=holds[0]))
    also: list[JobRef] = []
    if cache is not None:
        also = cache.apply(
            session,
            project=spec.project,
            priority=values["priority"],
            deadline_s=spec.deadline_s or default_deadline_s,
            now=now,
        )
        session.expire_all()  # the cache may have recorded the job's end
    return Submitted(session.get_one(JobRow, inserted), created=True, also=tuple(also))


def get_job(session: Session, job_id: str, *, tenant_id: str | None) -> JobRow:
    """The job, if it exists and belongs to ``tenant_id`` (``None``: any tenant's)."""
    job = session.get(JobRow, job_id)
    if job is None or (tenant_id is not None and job.tenant_id != tenant_id):
        raise NotFound(f"no job {job_id!r}", code="job_not_found")
    return job


def list_jobs(
    session: Session,
    *,
    tenant_id: str | None,
    status: JobStatus | None = None,
    batch_id: str | None = None,
    parent_id: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> tuple[list[JobRow], bool]:
    """Newest first (ids sort by creation time); ``after`` is the last id of the page before."""
    query = select(JobRow)
    if tenant_id is not None:
        query = query.where(JobRow.tenant_id == tenant_id)
    if status is not None:
        query = query.where(JobRow.status == status.value)
    if batch_id is not None:
        query = query.where(JobRow.batch_id == batch_id)
    if parent_id is not None:
        query = query.where(JobRow.parent_id == parent_id)
    if after is not None:
        query = query.where(JobRow.id < after)
    rows = list(session.scalars(query.order_by(JobRow.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def job_attempts(session: Session, job_id: str) -> list[AttemptRow]:
    return list(
        session.scalars(
            select(AttemptRow).where(AttemptRow.job_id == job_id).order_by(AttemptRow.number)
        )
    )


def cancel_job(session: Session, job_id: str, *, tenant_id: str | None) -> tuple[JobRow, bool]:
    """Cancel a job no worker holds; a running one is left to finish (409 ``job_running``),
    and a finished one stays as it ended (409 ``job_finished``). Its budget reservation is
    released in the same statement (app/ledger/record.py). Returns the job and whether this
    call cancelled it (False: it was cancelled already)."""
    job = get_job(session, job_id, tenant_id=tenant_id)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    moved = record(
        raw,
        job_id,
        Cancelled(),
        only_from=(JobStatus.QUEUED.value, JobStatus.WAITING.value),
    ).moved
    session.expire_all()
    job = get_job(session, job_id, tenant_id=tenant_id)
    if not moved and job.status != JobStatus.CANCELLED:
        running = job.status == JobStatus.RUNNING
        raise Conflict(
            f"job {job_id!r} is {job.status}: "
            + ("it is being served and cannot be cancelled" if running else "it has ended"),
            code="job_running" if running else "job_finished",
        )
    return job, moved
