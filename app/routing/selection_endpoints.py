"""``/v1/performance``, ``/v1/models/{id}/performance`` and ``POST /v1/route`` (dry run)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from app.api.auth import CurrentCaller
from app.api.deps import CurrentRegistry, State
from app.errors import InvalidInput, NotFound
from app.jobs.schemas import ChatParams
from app.routing.live import CurrentPerformance
from app.routing.performance import ModelPerformance, PerformanceTable
from app.routing.plan import route_request
from app.routing.selection import Candidate, Strategy

router = APIRouter(tags=["routing"])


class PerformanceOut(BaseModel):
    model: str
    samples: int = Field(description="Succeeded and failed attempts in the window.")
    succeeded: int
    success_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    errors: dict[str, int] = Field(description="Failed attempts by error class.")
    error_rates: dict[str, float]
    expected_latency_ms: float | None = Field(
        description="What selection assumes: p50 with enough samples, else the catalog hint."
    )
    latency_source: Literal["live", "prior", "none"]
    expected_success_rate: float
    quality: int | None


class PerformanceList(BaseModel):
    object: Literal["list"] = "list"
    window_s: float
    computed_at: datetime
    data: list[PerformanceOut]


class CandidateOut(BaseModel):
    model: str
    provider: str
    estimated_cost_usd: str
    expected_latency_ms: float
    latency_source: str
    expected_success_rate: float
    quality: int


class RouteOut(BaseModel):
    object: Literal["route"] = "route"
    strategy: Strategy
    model: str
    provider: str
    chain: list[str]
    estimated_cost_usd: str
    estimated_latency_ms: float | None
    reason: str
    candidates: list[CandidateOut] = Field(description="Qualifying models, best first.")


def _out(p: ModelPerformance) -> PerformanceOut:
    return PerformanceOut(
        model=p.model_id,
        samples=p.samples,
        succeeded=p.succeeded,
        success_rate=p.success_rate,
        latency_p50_ms=p.p50_ms,
        latency_p95_ms=p.p95_ms,
        latency_p99_ms=p.p99_ms,
        errors=dict(p.errors),
        error_rates=p.error_rates,
        expected_latency_ms=p.expected_latency_ms,
        latency_source=p.latency_source,
        expected_success_rate=p.expected_success_rate,
        quality=p.quality,
    )


def _list(table: PerformanceTable, models: list[str]) -> PerformanceList:
    return PerformanceList(
        window_s=table.window_s,
        computed_at=table.computed_at,
        data=[_out(p) for p in table.all(models)],
    )


@router.get("/v1/performance", summary="Live latency, success and error rates of every model")
def all_performance(
    _caller: CurrentCaller, registry: CurrentRegistry, performance: CurrentPerformance
) -> PerformanceList:
    return _list(performance.get(), sorted(registry.models))


@router.get(
    "/v1/models/{model_id:path}/performance",
    summary="One model's live latency percentiles, success rate and errors",
)
def model_performance(
    model_id: Annotated[str, Path(max_length=200)],
    _caller: CurrentCaller,
    registry: CurrentRegistry,
    performance: CurrentPerformance,
) -> PerformanceOut:
    model = registry.models.get(model_id)
    if model is None:
        try:
            model = registry.model(model_id, param="model_id")
        except InvalidInput:
            raise NotFound(f"no model {model_id!r}", code="model_not_found") from None
    return _out(performance.get().of(model.id))


def _candidate(c: Candidate) -> CandidateOut:
    return CandidateOut(
        model=c.model.id,
        provider=c.model.provider,
        estimated_cost_usd=str(c.cost_usd),
        expected_latency_ms=c.latency_ms,
        latency_source=c.latency_source,
        expected_success_rate=round(c.success_rate, 4),
        quality=c.quality,
    )


@router.post("/v1/route", summary="Which model a strategy request would go to (no job made)")
def dry_run(
    body: ChatParams,
    _caller: CurrentCaller,
    state: State,
    registry: CurrentRegistry,
    performance: CurrentPerformance,
) -> RouteOut:
    if body.strategy is None:
        raise InvalidInput("POST /v1/route needs a `strategy`", param="strategy")
    selection = route_request(registry, body, performance=performance.get, usable=state.usable)
    return RouteOut(
        strategy=selection.strategy,
        model=selection.model.id,
        provider=selection.model.provider,
        chain=[m.id for m in selection.chain],
        estimated_cost_usd=str(selection.estimated_cost_usd),
        estimated_latency_ms=selection.estimated_latency_ms,
        reason=selection.reason,
        candidates=[_candidate(c) for c in selection.ranked[:10]],
    )
