"""``/v1/usage``: tokens, cost and latency per model, for everything or one batch."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from app.api.auth import CurrentCaller
from app.api.deps import ReadSession
from app.ledger.cost import format_usd
from app.ledger.reports import usage_by_model

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
