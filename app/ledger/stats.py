"""``/v1/stats``: volume, success, latency percentiles, tokens and errors of finished jobs.

Reads the daily and hourly rollups below the watermark and the raw ``jobs`` table for
the rest (see ``app.ledger.timeframe.plan``), so the numbers are those of the raw table.
Percentiles come from log-scale latency buckets (8 per doubling): within 4.5% of exact.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from sqlalchemy.orm import Session

from app.ledger.rollup import BUCKETS_PER_DOUBLING, JOB_ROWS
from app.ledger.timeframe import RAW_RANGE, ROLLUP_RANGE, TENANT, ReadPlan, run


class StatsGroup(StrEnum):
    PROVIDER = "provider"
    MODEL = "model"
    TENANT = "tenant"
    PROJECT = "project"
    PRIORITY = "priority"


GROUP_COLUMN = {
    StatsGroup.PROVIDER: "provider",
    StatsGroup.MODEL: "model",
    StatsGroup.TENANT: "tenant_id",
    StatsGroup.PROJECT: "project",
    StatsGroup.PRIORITY: "priority",
}

_KEYS = "tenant_id, project, provider, model, priority"
_VOLUME = """SELECT {group} AS grp, status, error_class, cache, sum(jobs)::bigint AS jobs,
        sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens,
        sum(cached_tokens)::bigint AS cached_tokens, sum(cost_usd) AS cost_usd,
        sum(cost_saved_usd) AS cost_saved_usd
    FROM (
        SELECT {keys}, status, error_class, cache, jobs, input_tokens, output_tokens,
            cached_tokens, cost_usd, cost_saved_usd
        FROM job_rollups WHERE {rollup} AND {tenant}
        UNION ALL
        SELECT {keys}, status, error_class, cache, jobs, input_tokens, output_tokens,
            cached_tokens, cost_usd, cost_saved_usd
        FROM ({rows}) r WHERE {raw} AND {tenant}
    ) t GROUP BY 1, 2, 3, 4"""
_LATENCY = """SELECT {group} AS grp, bucket, sum(jobs)::bigint AS jobs
    FROM (
        SELECT {keys}, bucket, jobs FROM latency_rollups WHERE {rollup} AND {tenant}
        UNION ALL
        SELECT {keys}, bucket, jobs FROM ({rows}) r
        WHERE {raw} AND {tenant} AND latency_ms IS NOT NULL
    ) t GROUP BY 1, 2"""


@dataclass(slots=True)
class JobStats:
    """Finished jobs of one group (or all of them)."""

    key: str | None
    jobs: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_buckets: dict[int, int] = field(default_factory=dict)
    cache: dict[str, int] = field(default_factory=dict)  # jobs by cache outcome ("exact:hit")
    cost_saved_usd: dict[str, Decimal] = field(default_factory=dict)  # by cache outcome

    @property
    def success_rate(self) -> float | None:
        """Succeeded over succeeded + failed (cancelled jobs were never judged)."""
        judged = self.by_status.get("succeeded", 0) + self.by_status.get("failed", 0)
        return round(self.by_status.get("succeeded", 0) / judged, 4) if judged else None

    def percentile(self, q: float) -> float | None:
        return bucket_percentile(self.latency_buckets, q)

    def add(self, other: JobStats) -> None:
        self.jobs += other.jobs
        for mapping, extra in ((self.by_status, other.by_status), (self.errors, other.errors)):
            for k, n in extra.items():
                mapping[k] = mapping.get(k, 0) + n
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        self.cost_usd += other.cost_usd
        for b, n in other.latency_buckets.items():
            self.latency_buckets[b] = self.latency_buckets.get(b, 0) + n
        for k, n in other.cache.items():
            self.cache[k] = self.cache.get(k, 0) + n
        for k, usd in other.cost_saved_usd.items():
            self.cost_saved_usd[k] = self.cost_saved_usd.get(k, Decimal(0)) + usd


@dataclass(frozen=True, slots=True)
class StatsReport:
    overall: JobStats
    groups: list[JobStats]


def job_stats(
    session: Session, read: ReadPlan, *, tenant_id: str | None, group: StatsGroup | None
) -> StatsReport:
    column = GROUP_COLUMN[group] if group else "''"
    parts = {
        "group": column,
        "keys": _KEYS,
        "rollup": ROLLUP_RANGE,
        "raw": RAW_RANGE,
        "tenant": TENANT,
        "rows": JOB_ROWS,
    }
    params = {**read.params(), "tenant": tenant_id}
    groups: dict[str, JobStats] = defaultdict(lambda: JobStats(key=None))
    for r in run(session, _VOLUME.format(**parts), params):
        g = groups[r.grp]
        g.jobs += r.jobs
        g.by_status[r.status] = g.by_status.get(r.status, 0) + r.jobs
        if r.error_class:
            g.errors[r.error_class] = g.errors.get(r.error_class, 0) + r.jobs
        g.input_tokens += r.input_tokens
        g.output_tokens += r.output_tokens
        g.cached_tokens += r.cached_tokens
        g.cost_usd += Decimal(r.cost_usd)
        if r.cache:
            g.cache[r.cache] = g.cache.get(r.cache, 0) + r.jobs
            saved = g.cost_saved_usd.get(r.cache, Decimal(0))
            g.cost_saved_usd[r.cache] = saved + Decimal(r.cost_saved_usd)
    for r in run(session, _LATENCY.format(**parts), params):
        groups[r.grp].latency_buckets[r.bucket] = r.jobs
    overall = JobStats(key=None)
    for key, g in groups.items():
        g.key = key or None
        overall.add(g)
    ordered = sorted(groups.values(), key=lambda g: (-g.jobs, g.key or ""))
    return StatsReport(overall=overall, groups=ordered if group else [])


def bucket_value(bucket: int) -> float:
    """The geometric middle of a latency bucket, in ms."""
    if bucket <= 0:
        return 0.0
    return round(2 ** ((bucket - 0.5) / BUCKETS_PER_DOUBLING), 1)


def bucket_percentile(buckets: dict[int, int], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0 < q <= 1) of the jobs counted in ``buckets``."""
    total = sum(buckets.values())
    if total == 0:
        return None
    rank = max(1, -(-int(q * total * 1_000_000) // 1_000_000))  # ceil without float drift
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= rank:
            return bucket_value(bucket)
    return bucket_value(max(buckets))
