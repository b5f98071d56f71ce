"""``/v1/chains`` and ``/v1/ensembles``: run one, list them, read the shipped chains.

A run is read (and cancelled) like any job, at ``/v1/jobs/{id}``: its steps, their models,
statuses and costs, and how its answer was reached.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.api.auth import CurrentCaller
from app.api.deps import IdempotencyKey, ReadSession
from app.api.errors import documented
from app.errors import InvalidInput, NotFound
from app.jobs.schemas import JobList
from app.jobs.states import JobStatus
from app.orchestration.definitions import chain_named, shipped_chains
from app.orchestration.plans import plan_chain_run, plan_ensemble
from app.orchestration.schemas import (
    ChainCreate,
    ChainSpec,
    EnsembleCreate,
    OrchestrationAccepted,
)
from app.orchestration.service import Submitted, list_orchestrations
from app.orchestration.submission import Submitter
from app.orchestration.views import orchestration_out

chains = APIRouter(prefix="/v1/chains", tags=["chains"])
ensembles = APIRouter(prefix="/v1/ensembles", tags=["ensembles"])

ChainName = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
AfterId = Annotated[
    str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_]+$", description="The last id seen.")
]


class ChainDefinition(ChainSpec):
    name: str


class ChainDefinitionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ChainDefinition]


@chains.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Run a chain: steps in order, each a job, each prompted with the outputs before it",
    response_model=OrchestrationAccepted,
    responses=documented(402, 409),
)
def create_chain(
    spec: ChainCreate, submitter: Submitter, idempotency_key: IdempotencyKey
) -> OrchestrationAccepted:
    submitted = submitter.submit(
        lambda router: plan_chain_run(spec, router), spec, _payload(spec), idempotency_key
    )
    return _accepted(submitted)


@chains.get("", summary="Chains run, newest first")
def read_chains(
    caller: CurrentCaller,
    session: ReadSession,
    status: Annotated[JobStatus | None, Query()] = None,
    after: AfterId = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JobList:
    return _listed(session, "chain", caller.scope(), status, after, limit)


@chains.get("/definitions", summary="The shipped chains, usable by name")
def read_definitions() -> ChainDefinitionList:
    return ChainDefinitionList(
        data=[_definition(name, spec) for name, spec in sorted(shipped_chains().items())]
    )


@chains.get("/definitions/{name}", summary="One shipped chain", responses=documented(404))
def read_definition(name: ChainName) -> ChainDefinition:
    try:
        return _definition(name, chain_named(name))
    except InvalidInput as exc:  # an unknown name is a 404 here, a 400 in a request body
        raise NotFound(exc.message, code="chain_not_found") from None


@ensembles.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Run an ensemble: one request to several models in parallel, combined",
    response_model=OrchestrationAccepted,
    responses=documented(402, 409),
)
def create_ensemble(
    spec: EnsembleCreate, submitter: Submitter, idempotency_key: IdempotencyKey
) -> OrchestrationAccepted:
    submitted = submitter.submit(
        lambda router: plan_ensemble(spec, router), spec, _payload(spec), idempotency_key
    )
    return _accepted(submitted)


@ensembles.get("", summary="Ensembles run, newest first")
def read_ensembles(
    caller: CurrentCaller,
    session: ReadSession,
    status: Annotated[JobStatus | None, Query()] = None,
    after: AfterId = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JobList:
    return _listed(session, "ensemble", caller.scope(), status, after, limit)


def _listed(
    session: Session,
    kind: str,
    tenant_id: str | None,
    status: JobStatus | None,
    after: str | None,
    limit: int,
) -> JobList:
    rows, more = list_orchestrations(
        session, kind, tenant_id=tenant_id, status=status, after=after, limit=limit
    )
    return JobList(
        data=[orchestration_out(r, None) for r in rows],
        first_id=rows[0].id if rows else None,
        last_id=rows[-1].id if rows else None,
        has_more=more,
    )


def _definition(name: str, spec: ChainSpec) -> ChainDefinition:
    return ChainDefinition(name=name, **spec.model_dump())


def _payload(spec: ChainCreate | EnsembleCreate) -> dict[str, Any]:
    payload: dict[str, Any] = spec.model_dump(mode="json", exclude_none=True)
    return payload


def _accepted(submitted: Submitted) -> OrchestrationAccepted:
    row = submitted.row
    return OrchestrationAccepted(
        id=row.id,
        kind="chain" if row.kind == "chain" else "ensemble",
        status=JobStatus(row.status),
        steps=submitted.step_ids,
        created=submitted.created,
    )
