"""``/v1/budgets``: spending limits (set by the admin, read by their tenant)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.api.auth import AdminCaller, CurrentCaller
from app.api.deps import ReadSession, UnitOfWork
from app.api.errors import documented
from app.budgets.service import (
    BudgetState,
    Period,
    create_budget,
    current_state,
    delete_budget,
    get_budget,
    list_budgets,
)
from app.jobs.schemas import Project, StorableRequest, Strict
from app.ledger.cost import format_usd
from app.tenants.endpoints import TenantSlug
from app.tenants.service import get_tenant

router = APIRouter(prefix="/v1/budgets", tags=["budgets"])

BudgetId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_]+$")]
Usd = Annotated[Decimal, Field(gt=0, le=Decimal("1e9"), decimal_places=12)]


class BudgetCreate(StorableRequest):
    tenant_id: TenantSlug
    project: Project | None = Field(
        default=None, description="Limit one project of the tenant; absent: the whole tenant."
    )
    period: Period
    limit_usd: Usd


class BudgetUpdate(Strict):
    limit_usd: Usd


class BudgetOut(BaseModel):
    id: str
    object: Literal["budget"] = "budget"
    tenant_id: str
    project: str | None
    period: Period
    limit_usd: str
    window_start: datetime | None = Field(description="The current day or month; null per request.")
    spent_usd: str
    reserved_usd: str = Field(description="Held by jobs not yet finished, at their worst case.")
    remaining_usd: str


class BudgetList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BudgetOut]


def _out(state: BudgetState) -> BudgetOut:
    b = state.budget
    return BudgetOut(
        id=b.id,
        tenant_id=b.tenant_id,
        project=b.project,
        period=Period(b.period),
        limit_usd=format_usd(b.limit_usd) or "0",
        window_start=state.window_start,
        spent_usd=format_usd(state.spent_usd) or "0",
        reserved_usd=format_usd(state.reserved_usd) or "0",
        remaining_usd=format_usd(state.remaining_usd) or "0",
    )


def _state(session: Session, budget_id: str, tenant_id: str | None) -> BudgetOut:
    budget = get_budget(session, budget_id, tenant_id=tenant_id)
    return _out(current_state(session, budget, datetime.now(UTC)))


@router.post("", status_code=201, summary="Set a budget", responses=documented(409))
def post_budget(body: BudgetCreate, _: AdminCaller, uow: UnitOfWork) -> BudgetOut:
    with uow() as session:
        get_tenant(session, body.tenant_id)
        row = create_budget(session, body.tenant_id, body.project, body.period, body.limit_usd)
        return _state(session, row.id, None)


@router.get("", summary="Budgets and what is left of them")
def get_budgets(caller: CurrentCaller, session: ReadSession) -> BudgetList:
    now = datetime.now(UTC)
    rows = list_budgets(session, tenant_id=caller.scope())
    return BudgetList(data=[_out(current_state(session, b, now)) for b in rows])


@router.get("/{budget_id}", summary="One budget and what is left of it")
def get_one(budget_id: BudgetId, caller: CurrentCaller, session: ReadSession) -> BudgetOut:
    return _state(session, budget_id, caller.scope())


@router.patch("/{budget_id}", summary="Change a budget's limit")
def patch_budget(
    budget_id: BudgetId, body: BudgetUpdate, _: AdminCaller, uow: UnitOfWork
) -> BudgetOut:
    with uow() as session:
        get_budget(session, budget_id, tenant_id=None).limit_usd = body.limit_usd
        session.flush()
        return _state(session, budget_id, None)


@router.delete("/{budget_id}", status_code=204, summary="Remove a budget")
def remove_budget(budget_id: BudgetId, _: AdminCaller, uow: UnitOfWork) -> Response:
    with uow() as session:
        delete_budget(session, budget_id)
    return Response(status_code=204)
