"""Reports: ``/v1/usage`` (per model, one tenant or batch), ``/v1/stats`` and ``/v1/costs``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.api.auth import Caller, CurrentCaller
from app.api.deps import ReadSession
from app.cache.stats import CacheStatsOut, cache_stats
from app.errors import Forbidden
from app.ledger.cost import format_usd
from app.ledger.reports import usage_by_model
from app.ledger.rollup import watermark
from app.ledger.spend import FORECAST_FORMULA, CostGroup, cost_breakdown, month_forecast
from app.ledger.stats import JobStats, StatsGroup, job_stats
from app.ledger.timeframe import Period, Timeframe, parse_moment, plan

router = APIRouter(prefix="/v1/usage", tags=["usage"])


class ModelUsageOut(BaseModel):
    model: str
    jobs: int
    succeeded: int
    failed: int
    attempts: int
    failed_attempts: int
    input_tokens: int
    output_tokens: int
    cost_usd: str
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class UsageReport(BaseModel):
    object: Literal["usage_report"] = "usage_report"
    batch_id: str | None
    data: list[ModelUsageOut]
    total_cost_usd: str


@router.get("", summary="Usage and cost per model")
def usage(
    caller: CurrentCaller,
    session: ReadSession,
    batch_id: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_]+$")] = None,
) -> UsageReport:
    rows = usage_by_model(session, tenant_id=caller.scope(), batch_id=batch_id)
    total = sum((r.cost_usd for r in rows), start=Decimal(0))
    return UsageReport(
        batch_id=batch_id,
        data=[
            ModelUsageOut(
                model=r.model,
                jobs=r.jobs,
                succeeded=r.succeeded,
                failed=r.failed,
                attempts=r.attempts,
                failed_attempts=r.failed_attempts,
                input_tokens=r.input_tokens,
                output_tokens=r.output_tokens,
                cost_usd=format_usd(r.cost_usd) or "0",
                latency_p50_ms=r.latency_p50_ms,
                latency_p95_ms=r.latency_p95_ms,
            )
            for r in rows
        ],
        total_cost_usd=format_usd(total) or "0",
    )


# -- /v1/stats and /v1/costs ---------------------------------------------------------------
stats_router = APIRouter(prefix="/v1/stats", tags=["reports"])
costs_router = APIRouter(prefix="/v1/costs", tags=["reports"])

TenantParam = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Admin only: one tenant (default: all). A tenant key always sees its own.",
    ),
]
ISO_8601 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$"
StartParam = Annotated[
    str | None,
    Query(
        pattern=ISO_8601,
        description="ISO-8601 with offset, e.g. 2026-11-22T00:00:00Z; jobs finished from it.",
    ),
]
EndParam = Annotated[
    str | None,
    Query(pattern=ISO_8601, description="ISO-8601 with offset (default: now); exclusive."),
]
PeriodParam = Annotated[
    Period | None, Query(description="Instead of start: this long before end (default 24h).")
]


def _tenant_scope(caller: Caller, tenant: str | None, *, by_tenant: bool) -> str | None:
    if by_tenant and not caller.admin:
        raise Forbidden("grouping by tenant needs the admin key", code="admin_required")
    return caller.scope(tenant)


class LatencyOut(BaseModel):
    p50: float | None
    p95: float | None
    p99: float | None


class TokensOut(BaseModel):
    input: int
    output: int
    cached: int


class StatsOut(BaseModel):
    key: str | None = Field(description="The group's value (null: none, e.g. no project).")
    jobs: int
    by_status: dict[str, int]
    success_rate: float | None = Field(description="succeeded / (succeeded + failed).")
    latency_ms: LatencyOut
    tokens: TokensOut
    cost_usd: str
    errors: dict[str, int] = Field(description="Failed jobs by error class.")
    cache: CacheStatsOut | None = Field(
        default=None,
        description="The response cache: hits, misses, hit rate and cost saved, by mode "
        "(null: the cache took part in none of these jobs).",
    )


class StatsReportOut(BaseModel):
    object: Literal["stats_report"] = "stats_report"
    start: datetime
    end: datetime
    tenant: str | None
    group_by: StatsGroup | None
    overall: StatsOut
    data: list[StatsOut]
    rolled_until: datetime | None = Field(
        description="Rollups cover jobs finished before this; later ones are read raw."
    )


def _stats_out(s: JobStats) -> StatsOut:
    return StatsOut(
        key=s.key,
        jobs=s.jobs,
        by_status=s.by_status,
        success_rate=s.success_rate,
        latency_ms=LatencyOut(
            p50=s.percentile(0.5), p95=s.percentile(0.95), p99=s.percentile(0.99)
        ),
        tokens=TokensOut(input=s.input_tokens, output=s.output_tokens, cached=s.cached_tokens),
        cost_usd=format_usd(s.cost_usd) or "0",
        errors=s.errors,
        cache=cache_stats(s.cache, s.cost_saved_usd),
    )


@stats_router.get("", summary="Volume, success rate, latency percentiles, tokens and errors")
def stats(
    session: ReadSession,
    caller: CurrentCaller,
    start: StartParam = None,
    end: EndParam = None,
    period: PeriodParam = None,
    group_by: Annotated[StatsGroup | None, Query()] = None,
    tenant: TenantParam = None,
) -> StatsReportOut:
    """Jobs that finished in the window; percentiles are within 4.5% (log-scale buckets)."""
    scope = _tenant_scope(caller, tenant, by_tenant=group_by is StatsGroup.TENANT)
    frame = Timeframe.resolve(
        start=parse_moment(start, "start"), end=parse_moment(end, "end"), period=period
    )
    read = plan(session, frame)
    report = job_stats(session, read, tenant_id=scope, group=group_by)
    return StatsReportOut(
        start=frame.start,
        end=frame.end,
        tenant=scope,
        group_by=group_by,
        overall=_stats_out(report.overall),
        data=[_stats_out(g) for g in report.groups],
        rolled_until=watermark(session.connection()),
    )


class CostLineOut(BaseModel):
    key: str | None = Field(description="The group's value (null: none, e.g. no project).")
    cost_usd: str
    percent: float = Field(description="Share of the total, rounded to 2 places.")
    attempts: int
    failed_attempts: int
    input_tokens: int
    output_tokens: int


class ForecastOut(BaseModel):
    month: str
    month_to_date_usd: str
    daily_average_usd: str
    days_left: float
    forecast_usd: str
    description: str = FORECAST_FORMULA


class CostReportOut(BaseModel):
    object: Literal["cost_report"] = "cost_report"
    start: datetime
    end: datetime
    tenant: str | None
    group_by: CostGroup | None
    total_cost_usd: str
    data: list[CostLineOut]
    forecast: ForecastOut


@costs_router.get("", summary="Total cost, a breakdown with shares, and a month forecast")
def costs(
    session: ReadSession,
    caller: CurrentCaller,
    start: StartParam = None,
    end: EndParam = None,
    period: PeriodParam = None,
    group_by: Annotated[CostGroup | None, Query()] = CostGroup.MODEL,
    tenant: TenantParam = None,
) -> CostReportOut:
    """Cost of every attempt (failed ones included) of jobs that finished in the window."""
    scope = _tenant_scope(caller, tenant, by_tenant=group_by is CostGroup.TENANT)
    frame = Timeframe.resolve(
        start=parse_moment(start, "start"), end=parse_moment(end, "end"), period=period
    )
    total, lines = cost_breakdown(session, frame, tenant_id=scope, group=group_by)
    f = month_forecast(session, tenant_id=scope, now=datetime.now(UTC))
    return CostReportOut(
        start=frame.start,
        end=frame.end,
        tenant=scope,
        group_by=group_by,
        total_cost_usd=format_usd(total) or "0",
        data=[
            CostLineOut(
                key=line.key,
                cost_usd=format_usd(line.cost_usd) or "0",
                percent=line.percent,
                attempts=line.attempts,
                failed_attempts=line.failed_attempts,
                input_tokens=line.input_tokens,
                output_tokens=line.output_tokens,
            )
            for line in lines
        ],
        forecast=ForecastOut(
            month=f.month,
            month_to_date_usd=format_usd(f.month_to_date_usd) or "0",
            daily_average_usd=format_usd(f.daily_average_usd) or "0",
            days_left=f.days_left,
            forecast_usd=format_usd(f.forecast_usd) or "0",
        ),
    )
