"""Hourly rollups of finished jobs, so that reports over a million jobs read thousands of rows.

A job is rolled up in the hour of its ``finished_at`` (``span`` 'hour'), and whole UTC days
again from their hours (``span`` 'day'), so a 30-day report reads 30 rows per key, not 720.
Each run recomputes whole hours from the raw tables, ``[watermark - RECOMPUTE,
floor_hour(now - LAG))``, deleting and re-inserting them (and their days) in one
transaction: running it twice (or concurrently: an advisory lock serialises runs) gives the
same rows, and a job whose finish committed a little after its ``finished_at`` (out of
order) is still counted by the next run. Reports read the rollups below the watermark and
the raw tables from there on (the live tail), so they are exact and fresh whatever the lag.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, TextClause, text

ROLLUP_TASK = "switchboard.rollup_reports"
ROLLUP_INTERVAL_S = 60.0  # beat schedule
WATERMARK = "reports"
LAG = timedelta(minutes=5)  # a finish commits well within this after its finished_at
RECOMPUTE = timedelta(hours=2)  # hours below the watermark redone on every run
_LOCK_ID = 0x5B_0007  # pg_advisory_xact_lock key: one rollup at a time

TERMINAL_SQL = "('succeeded', 'failed', 'cancelled')"

# Latency buckets: 8 per doubling (bucket b >= 1 holds [2^((b-1)/8), 2^(b/8)) ms; 0 holds 0), so
# a percentile read from them is within 4.5% of the exact one. The same expression serves the
# rollup and the live tail, so both give identical answers.
BUCKETS_PER_DOUBLING = 8
BUCKET_SQL = (
    "CASE WHEN j.latency_ms < 1 THEN 0 "
    f"ELSE 1 + floor(ln(j.latency_ms) * {BUCKETS_PER_DOUBLING} / ln(2))::int END"
)

# Tokens the providers billed: a job served from the response cache shows its answer's usage
# but was billed none (app/cache).
_BILLED = (
    "(CASE WHEN j.cache_source_job_id IS NULL THEN coalesce(j.{column}, 0) ELSE 0 END)::bigint"
)

# One row per finished job, in the rollup's key and measure columns.
JOB_ROWS = f"""SELECT j.finished_at, date_trunc('hour', j.finished_at) AS starts_at,
        j.tenant_id,
        coalesce(j.project, '') AS project,
        coalesce(j.served_provider, j.provider) AS provider,
        coalesce(j.served_model, j.models[j.chain_index + 1], '') AS model,
        j.priority, j.status, coalesce(j.error_class, '') AS error_class,
        1 AS jobs,
        {_BILLED.format(column="input_tokens")} AS input_tokens,
        {_BILLED.format(column="output_tokens")} AS output_tokens,
        {_BILLED.format(column="cached_tokens")} AS cached_tokens,
        coalesce(j.cost_usd, 0) AS cost_usd,
        coalesce(j.latency_ms, 0)::bigint AS latency_ms_sum,
        j.latency_ms,
        {BUCKET_SQL} AS bucket,
        coalesce(j.cache, '') AS cache,
        coalesce(j.cost_saved_usd, 0) AS cost_saved_usd
    FROM jobs j
    WHERE j.finished_at IS NOT NULL AND j.status IN {TERMINAL_SQL}"""  # noqa: S608 - constants

# One row per attempt of a finished job, counted in the job's finish hour (so a report's
# cost and its jobs cover the same jobs).
ATTEMPT_ROWS = f"""SELECT j.finished_at, date_trunc('hour', j.finished_at) AS starts_at,
        j.tenant_id, coalesce(j.project, '') AS project, a.provider, a.model_id AS model,
        j.priority,
        coalesce(a.key_id, '') AS key_id,
        1 AS attempts, (a.status = 'failed')::int AS failed_attempts,
        coalesce(a.input_tokens, 0)::bigint AS input_tokens,
        coalesce(a.output_tokens, 0)::bigint AS output_tokens,
        coalesce(a.cost_usd, 0) AS cost_usd
    FROM attempts a JOIN jobs j ON j.id = a.job_id
    WHERE j.finished_at IS NOT NULL AND j.status IN {TERMINAL_SQL}"""  # noqa: S608 - constants

_PARTS = {
    "job_key": "tenant_id, project, provider, model, priority, status, error_class, cache",
    "latency_key": "tenant_id, project, provider, model, priority, bucket",
    "cost_key": "tenant_id, project, provider, model, priority, key_id",
    "job_sums": "sum(jobs), sum(input_tokens), sum(output_tokens), sum(cached_tokens), "
    "sum(cost_usd), sum(latency_ms_sum), sum(cost_saved_usd)",
    "cost_sums": "sum(attempts), sum(failed_attempts), sum(input_tokens), sum(output_tokens), "
    "sum(cost_usd)",
    "in_range": "finished_at >= :lo AND finished_at < :hi",
    "job_rows": JOB_ROWS,
    "attempt_rows": ATTEMPT_ROWS,
}

_PARTS.update(
    {
        "job_columns": "jobs, input_tokens, output_tokens, cached_tokens, cost_usd, "
        "latency_ms_sum, cost_saved_usd",
        "cost_columns": "attempts, failed_attempts, input_tokens, output_tokens, cost_usd",
        "day": "date_trunc('day', starts_at, 'UTC')",
        "day_range": "span = 'hour' AND starts_at >= :day_lo AND starts_at < :day_hi",
    }
)
_TABLES = ("job_rollups", "latency_rollups", "cost_rollups")


def _sql(template: str, **extra: str) -> TextClause:
    """A statement from constant fragments (never from input)."""
    return text(template.format(**_PARTS, **extra))


# Hours [lo, hi) from the raw tables.
_FOLD_HOURS = [
    *(
        _sql("DELETE FROM {t} WHERE span = 'hour' AND starts_at >= :lo AND starts_at < :hi", t=t)
        for t in _TABLES
    ),
    _sql(
        """INSERT INTO job_rollups (span, starts_at, {job_key}, {job_columns})
        SELECT 'hour', starts_at, {job_key}, {job_sums}
        FROM ({job_rows}) r WHERE {in_range} GROUP BY starts_at, {job_key}"""
    ),
    _sql(
        """INSERT INTO latency_rollups (span, starts_at, {latency_key}, jobs)
        SELECT 'hour', starts_at, {latency_key}, sum(jobs) FROM ({job_rows}) r
        WHERE {in_range} AND latency_ms IS NOT NULL GROUP BY starts_at, {latency_key}"""
    ),
    _sql(
        """INSERT INTO cost_rollups (span, starts_at, {cost_key}, {cost_columns})
        SELECT 'hour', starts_at, {cost_key}, {cost_sums}
        FROM ({attempt_rows}) r WHERE {in_range} GROUP BY starts_at, {cost_key}"""
    ),
]
# Whole UTC days [day_lo, day_hi) again from their hours: long windows read 24x fewer rows.
_FOLD_DAYS = [
    *(
        _sql(
            "DELETE FROM {t} WHERE span = 'day' AND starts_at >= :day_lo AND starts_at < :day_hi",
            t=t,
        )
        for t in _TABLES
    ),
    _sql(
        """INSERT INTO job_rollups (span, starts_at, {job_key}, {job_columns})
        SELECT 'day', {day}, {job_key}, {job_sums}
        FROM job_rollups WHERE {day_range} GROUP BY {day}, {job_key}"""
    ),
    _sql(
        """INSERT INTO latency_rollups (span, starts_at, {latency_key}, jobs)
        SELECT 'day', {day}, {latency_key}, sum(jobs)
        FROM latency_rollups WHERE {day_range} GROUP BY {day}, {latency_key}"""
    ),
    _sql(
        """INSERT INTO cost_rollups (span, starts_at, {cost_key}, {cost_columns})
        SELECT 'day', {day}, {cost_key}, {cost_sums}
        FROM cost_rollups WHERE {day_range} GROUP BY {day}, {cost_key}"""
    ),
]


@dataclass(frozen=True, slots=True)
class RollupRun:
    recomputed_from: datetime | None
    rolled_until: datetime | None
    job_rows: int


def watermark(conn: Connection) -> datetime | None:
    """Jobs finished before this are in the rollups; None: nothing rolled up yet."""
    value: datetime | None = conn.execute(
        text("SELECT rolled_until FROM rollup_watermarks WHERE name = :n"), {"n": WATERMARK}
    ).scalar()
    return value


def roll_up(
    conn: Connection, *, until: datetime | None = None, since: datetime | None = None
) -> RollupRun:
    """Fold finished jobs into the rollups, up to ``until`` (default: the last whole hour
    before now - LAG), recomputing from ``since`` (default: watermark - RECOMPUTE; on the
    first run, the first finished job). Call inside a transaction; idempotent."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    hi: datetime = (
        until
        or conn.execute(
            text("SELECT date_trunc('hour', now() - make_interval(secs => :lag))"),
            {"lag": LAG.total_seconds()},
        ).scalar_one()
    )
    hi = _floor_hour(hi)
    previous = watermark(conn)
    lo = since
    if lo is None and previous is not None:
        lo = previous - RECOMPUTE
    if lo is None:
        lo = conn.execute(
            text(
                "SELECT date_trunc('hour', min(finished_at)) FROM jobs "
                "WHERE finished_at IS NOT NULL"
            )
        ).scalar()
    lo = _floor_hour(lo) if lo is not None else hi
    if previous is not None:
        hi = max(hi, previous)  # hours already rolled up are refreshed too, never dropped
    rows = 0
    if lo < hi:
        params = {"lo": lo, "hi": hi, "day_lo": floor_day(lo), "day_hi": floor_day(hi)}
        for statement in _FOLD_HOURS:
            conn.execute(statement, params)
        if params["day_lo"] < params["day_hi"]:
            for statement in _FOLD_DAYS:
                conn.execute(statement, params)
        rows = conn.execute(
            text(
                "SELECT count(*) FROM job_rollups "
                "WHERE span = 'hour' AND starts_at >= :lo AND starts_at < :hi"
            ),
            params,
        ).scalar_one()
    conn.execute(
        text(
            """INSERT INTO rollup_watermarks (name, rolled_until) VALUES (:n, :t)
            ON CONFLICT (name) DO UPDATE SET rolled_until = excluded.rolled_until,
                updated_at = now()"""
        ),
        {"n": WATERMARK, "t": hi},
    )
    return RollupRun(recomputed_from=lo if lo < hi else None, rolled_until=hi, job_rows=rows)


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def floor_day(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC day."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
