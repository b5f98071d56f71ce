"""``/v1/costs``: what finished jobs cost, broken down, and where the month is heading.

Cost comes from attempts (failed attempts can be billed too), counted in the hour their job
finished, so a cost report and a stats report over one window cover the same jobs. Rollups
below the watermark, raw rows above it: exact to the 12th decimal.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from sqlalchemy.orm import Session

from app.ledger.cost import QUANTUM
from app.ledger.rollup import ATTEMPT_ROWS
from app.ledger.timeframe import RAW_RANGE, ROLLUP_RANGE, TENANT, Timeframe, plan, run


class CostGroup(StrEnum):
    MODEL = "model"
    PROVIDER = "provider"
    TENANT = "tenant"
    PROJECT = "project"
    KEY = "key"
    DAY = "day"


GROUP_COLUMN = {
    CostGroup.MODEL: "model",
    CostGroup.PROVIDER: "provider",
    CostGroup.TENANT: "tenant_id",
    CostGroup.PROJECT: "project",
    CostGroup.KEY: "key_id",
    CostGroup.DAY: "to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}

_KEYS = "starts_at, tenant_id, project, provider, model, priority, key_id"
_COSTS = """SELECT {group} AS grp, sum(attempts)::bigint AS attempts,
        sum(failed_attempts)::bigint AS failed_attempts,
        sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens,
        sum(cost_usd) AS cost_usd
    FROM (
        SELECT {keys}, attempts, failed_attempts, input_tokens, output_tokens, cost_usd
        FROM cost_rollups WHERE {rollup} AND {tenant}
        UNION ALL
        SELECT {keys}, attempts, failed_attempts, input_tokens, output_tokens, cost_usd
        FROM ({rows}) r WHERE {raw} AND {tenant}
    ) t GROUP BY 1"""

FORECAST_FORMULA = (
    "forecast_usd = month_to_date_usd + daily_average_usd × days_left, where "
    "daily_average_usd = cost of jobs finished in the last 7 × 24 h ÷ 7 and days_left = "
    "the fraction of days from now to the start of next month (UTC)"
)


@dataclass(frozen=True, slots=True)
class CostLine:
    key: str | None
    cost_usd: Decimal
    percent: float
    attempts: int
    failed_attempts: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Forecast:
    month: str
    month_to_date_usd: Decimal
    daily_average_usd: Decimal
    days_left: float
    forecast_usd: Decimal


def cost_breakdown(
    session: Session,
    frame: Timeframe,
    *,
    tenant_id: str | None,
    group: CostGroup | None,
    use_rollups: bool = True,
) -> tuple[Decimal, list[CostLine]]:
    """The total and, with a ``group``, each group's share of it (largest first)."""
    read = plan(session, frame, use_rollups=use_rollups)
    sql = _COSTS.format(
        group=GROUP_COLUMN[group] if group else "''",
        keys=_KEYS,
        rollup=ROLLUP_RANGE,
        raw=RAW_RANGE,
        tenant=TENANT,
        rows=ATTEMPT_ROWS,
    )
    rows = run(session, sql, {**read.params(), "tenant": tenant_id})
    total = sum((Decimal(r.cost_usd) for r in rows), start=Decimal(0))
    lines = [
        CostLine(
            key=r.grp or None,
            cost_usd=Decimal(r.cost_usd),
            percent=round(float(Decimal(r.cost_usd) * 100 / total), 2) if total else 0.0,
            attempts=r.attempts,
            failed_attempts=r.failed_attempts,
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
        )
        for r in rows
    ]
    lines.sort(key=lambda line: (-line.cost_usd, line.key or ""))
    return total, lines if group else []


def month_forecast(session: Session, *, tenant_id: str | None, now: datetime) -> Forecast:
    """Spend so far this calendar month (UTC) + the last 7 days' daily average × days left."""
    now = now.astimezone(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days_in_month = calendar.monthrange(now.year, now.month)[1]
    next_month = month_start + timedelta(days=days_in_month)
    so_far = Decimal(0)
    if now > month_start:
        so_far, _ = cost_breakdown(
            session, Timeframe(month_start, now), tenant_id=tenant_id, group=None
        )
    week, _ = cost_breakdown(
        session, Timeframe(now - timedelta(days=7), now), tenant_id=tenant_id, group=None
    )
    daily = (week / 7).quantize(QUANTUM)
    days_left = (next_month - now) / timedelta(days=1)
    forecast = (so_far + daily * Decimal(str(round(days_left, 6)))).quantize(QUANTUM)
    return Forecast(
        month=month_start.strftime("%Y-%m"),
        month_to_date_usd=so_far,
        daily_average_usd=daily,
        days_left=round(days_left, 4),
        forecast_usd=forecast,
    )
