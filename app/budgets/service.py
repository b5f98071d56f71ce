"""Budgets and their windows: reserve a job's worst case, settle to what it really cost.

A day or month budget keeps one ``budget_windows`` row per window with what was spent and
what open jobs have reserved. Submitting takes the reservation with one conditional UPDATE
per budget (``spent + reserved + amount <= limit``) inside the submission's transaction, so
concurrent submissions queue on the row lock and can never together exceed the limit; a
refused reservation rolls the whole submission back. When the job ends the ledger releases
its reservation and adds its real cost in the same statement that records the outcome
(app/ledger/record.py). A ``request`` budget caps each job's worst case and holds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.db.tables import BudgetRow, BudgetWindowRow, budgets
from app.errors import BudgetExceeded, Conflict, NotFound
from app.ids import new_id
from app.ledger.cost import format_usd


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"
    REQUEST = "request"


def window_start(period: Period, now: datetime) -> datetime:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day.replace(day=1) if period is Period.MONTH else day


@dataclass(frozen=True, slots=True)
class BudgetState:
    budget: BudgetRow
    window_start: datetime | None
    spent_usd: Decimal
    reserved_usd: Decimal

    @property
    def remaining_usd(self) -> Decimal:
        return self.budget.limit_usd - self.spent_usd - self.reserved_usd


def applicable(session: Session, tenant_id: str, project: str | None) -> list[BudgetRow]:
    """The tenant's own budgets and, for a job of a project, that project's; by id, the order
    reservations lock windows in (so two submissions can't deadlock)."""
    scope: ColumnElement[bool] = BudgetRow.project.is_(None)
    if project is not None:
        scope = or_(scope, BudgetRow.project == project)
    query = select(BudgetRow).where(BudgetRow.tenant_id == tenant_id, scope)
    return list(session.scalars(query.order_by(BudgetRow.id)))


_RESERVE = text(
    """UPDATE budget_windows w SET reserved_usd = w.reserved_usd + :amount
    FROM budgets b
    WHERE b.id = w.budget_id AND w.budget_id = :budget_id AND w.window_start = :window_start
        AND w.spent_usd + w.reserved_usd + :amount <= b.limit_usd
    RETURNING w.budget_id"""
)


def reserve(
    session: Session,
    tenant_id: str,
    project: str | None,
    amounts: Sequence[Decimal],
    *,
    now: datetime,
) -> list[list[dict[str, Any]]] | None:
    """Reserve each job's worst case (``amounts``, one per job) against every budget that
    applies; the holds to store on each job, or ``None`` when no budget applies.

    Raises ``BudgetExceeded`` (and takes nothing) if any budget has no room for all of them.
    """
    found = applicable(session, tenant_id, project)
    if not found:
        return None
    holds: list[list[dict[str, Any]]] = [[] for _ in amounts]
    total = sum(amounts, start=Decimal(0))
    for budget in found:
        period = Period(budget.period)
        if period is Period.REQUEST:
            worst = max(amounts, default=Decimal(0))
            if worst > budget.limit_usd:
                raise BudgetExceeded(
                    f"a request may cost up to ${format_usd(worst)}, above the per-request "
                    f"budget of ${format_usd(budget.limit_usd)} ({_scope(budget)})"
                )
            continue
        start = window_start(period, now)
        session.execute(
            insert(BudgetWindowRow)
            .values(budget_id=budget.id, window_start=start)
            .on_conflict_do_nothing()
        )
        params = {"amount": total, "budget_id": budget.id, "window_start": start}
        if session.execute(_RESERVE, params).scalar_one_or_none() is None:
            state = _window(session, budget, start)
            raise BudgetExceeded(
                f"the {period.value} budget of ${format_usd(budget.limit_usd)} "
                f"({_scope(budget)}) has ${format_usd(max(state.remaining_usd, Decimal(0)))} "
                f"left; this submission may cost up to ${format_usd(total)}"
            )
        for job_holds, amount in zip(holds, amounts, strict=True):
            job_holds.append(
                {"budget_id": budget.id, "window_start": start.isoformat(), "usd": str(amount)}
            )
    return holds


def _scope(budget: BudgetRow) -> str:
    where = f"tenant {budget.tenant_id}"
    return f"{where}, project {budget.project}" if budget.project else where


def _window(session: Session, budget: BudgetRow, start: datetime) -> BudgetState:
    row = session.get(BudgetWindowRow, (budget.id, start), populate_existing=True)
    spent = row.spent_usd if row else Decimal(0)
    reserved = row.reserved_usd if row else Decimal(0)
    return BudgetState(budget, start, spent, reserved)


def current_state(session: Session, budget: BudgetRow, now: datetime) -> BudgetState:
    period = Period(budget.period)
    if period is Period.REQUEST:
        return BudgetState(budget, None, Decimal(0), Decimal(0))
    return _window(session, budget, window_start(period, now))


# -- administration ------------------------------------------------------------------------
def create_budget(
    session: Session,
    tenant_id: str,
    project: str | None,
    period: Period,
    limit_usd: Decimal,
) -> BudgetRow:
    stmt = (
        insert(budgets)
        .values(
            id=new_id("bud"),
            tenant_id=tenant_id,
            project=project,
            period=period.value,
            limit_usd=limit_usd,
        )
        .on_conflict_do_nothing()
        .returning(budgets.c.id)
    )
    budget_id = session.execute(stmt).scalar_one_or_none()
    if budget_id is None:
        raise Conflict(
            "this tenant already has a budget for that project and period; change its limit",
            code="budget_exists",
        )
    return session.get_one(BudgetRow, budget_id)


def get_budget(session: Session, budget_id: str, *, tenant_id: str | None) -> BudgetRow:
    row = session.get(BudgetRow, budget_id)
    if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
        raise NotFound(f"no budget {budget_id!r}", code="budget_not_found")
    return row


def list_budgets(session: Session, *, tenant_id: str | None) -> list[BudgetRow]:
    query = select(BudgetRow)
    if tenant_id is not None:
        query = query.where(BudgetRow.tenant_id == tenant_id)
    return list(session.scalars(query.order_by(BudgetRow.tenant_id, BudgetRow.id)))


def delete_budget(session: Session, budget_id: str) -> None:
    removed = session.execute(
        delete(BudgetRow).where(BudgetRow.id == budget_id).returning(BudgetRow.id)
    ).scalar_one_or_none()
    if removed is None:
        raise NotFound(f"no budget {budget_id!r}", code="budget_not_found")
