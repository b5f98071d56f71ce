"""Usage and cost reports, read straight from the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session


@dataclass(frozen=True, slots=True)
class ModelUsage:
    model: str
    jobs: int
    succeeded: int
    failed: int
    attempts: int
    failed_attempts: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    latency_p50_ms: float | None
    latency_p95_ms: float | None


# A job is counted under the model that served it or, if it failed, the one it last tried;
# tokens are those billed (a job served from the response cache was billed none).
_JOBS = text(
    """SELECT coalesce(served_model, models[chain_index + 1]) AS model,
        count(*) AS jobs,
        count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
        count(*) FILTER (WHERE status = 'failed') AS failed,
        coalesce(sum(input_tokens) FILTER (WHERE cache_source_job_id IS NULL), 0) AS input_tokens,
        coalesce(sum(output_tokens) FILTER (WHERE cache_source_job_id IS NULL), 0)
            AS output_tokens,
        coalesce(sum(cost_usd), 0) AS cost_usd,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95
    FROM jobs
    WHERE (CAST(:tenant_id AS text) IS NULL OR tenant_id = :tenant_id)
        AND (CAST(:batch_id AS text) IS NULL OR batch_id = :batch_id)
    GROUP BY 1"""
)
_ATTEMPTS = text(
    """SELECT a.model_id AS model, count(*) AS attempts,
        count(*) FILTER (WHERE a.status = 'failed') AS failed_attempts
    FROM attempts a JOIN jobs j ON j.id = a.job_id
    WHERE (CAST(:tenant_id AS text) IS NULL OR j.tenant_id = :tenant_id)
        AND (CAST(:batch_id AS text) IS NULL OR j.batch_id = :batch_id)
    GROUP BY 1"""
)


def usage_by_model(
    session: Session, *, tenant_id: str | None, batch_id: str | None = None
) -> list[ModelUsage]:
    params = {"tenant_id": tenant_id, "batch_id": batch_id}
    attempts = {r.model: r for r in session.execute(_ATTEMPTS, params)}
    report = []
    for r in session.execute(_JOBS, params):
        tried = attempts.get(r.model)
        report.append(
            ModelUsage(
                model=r.model,
                jobs=r.jobs,
                succeeded=r.succeeded,
                failed=r.failed,
                attempts=tried.attempts if tried else 0,
                failed_attempts=tried.failed_attempts if tried else 0,
                input_tokens=int(r.input_tokens),
                output_tokens=int(r.output_tokens),
                cost_usd=Decimal(r.cost_usd),
                latency_p50_ms=r.p50,
                latency_p95_ms=r.p95,
            )
        )
    return sorted(report, key=lambda u: u.model)
