"""``switchboard bench reports``: report latency on a generated ledger of a million jobs.

Makes a scratch database on a Postgres server, migrates it, fills it with ``jobs`` finished
over the last 30 days (4 tenants, 4 projects, 6 models on 3 providers, 3 priorities, 5%
failed, 10% with a billed failed attempt first) by ``INSERT ... SELECT generate_series``, runs
the rollup, then times each report (median of 5) read through the rollups + live tail and
read raw, and checks both give the same answer. The scratch database is dropped at the end.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from rich.console import Console
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.db.migrate import alembic_config
from app.embedded import to_sqlalchemy_url
from app.ledger.rollup import roll_up
from app.ledger.spend import CostGroup, cost_breakdown, month_forecast
from app.ledger.stats import StatsGroup, job_stats
from app.ledger.timeframe import PERIODS, Period, Timeframe, plan

console = Console(stderr=True)

_MODELS = "ARRAY['sim-gpt-mini','sim-gpt','sim-claude-haiku','sim-claude','sim-gemini','sim-o']"
_PROVIDERS = (
    "ARRAY['sim-openai','sim-openai','sim-anthropic','sim-anthropic','sim-gemini','sim-openai']"
)
# g's pseudo-random spread over the window: a multiplicative hash, not sequential ids.
_FILL_JOBS = f"""INSERT INTO jobs (id, tenant_id, project, status, priority, request, models,
        provider, served_model, served_provider, input_tokens, output_tokens, cost_usd,
        latency_ms, error_class, attempt_count, created_at, finished_at)
    SELECT 'job_bench_' || g, 'tenant_' || (g % 4),
        (ARRAY[NULL, 'alpha', 'beta', 'gamma'])[1 + (g / 7) % 4],
        CASE WHEN g % 20 = 0 THEN 'failed' ELSE 'succeeded' END,
        (ARRAY['high', 'normal', 'low'])[1 + (g / 3) % 3],
        '{{}}'::jsonb, ARRAY[({_MODELS})[1 + g % 6]], ({_PROVIDERS})[1 + g % 6],
        CASE WHEN g % 20 = 0 THEN NULL ELSE ({_MODELS})[1 + g % 6] END,
        CASE WHEN g % 20 = 0 THEN NULL ELSE ({_PROVIDERS})[1 + g % 6] END,
        100 + g % 900, 20 + g % 400,
        ((100 + g % 900) * 0.15 + (20 + g % 400) * 0.6) / 1000000.0
            + CASE WHEN g % 10 = 0 THEN 0.000015 ELSE 0 END,
        50 + (g::bigint * 7919) % 4000 + CASE WHEN g % 50 = 0 THEN 20000 ELSE 0 END,
        CASE WHEN g % 20 = 0 THEN 'server_error' END,
        CASE WHEN g % 10 = 0 THEN 2 ELSE 1 END,
        t - interval '2 seconds', t
    FROM generate_series(1, :n) g,
        LATERAL (SELECT now() - ((g::bigint * 2654435761) % 2592000) * interval '1 s' AS t) w"""  # noqa: S608
_FILL_ATTEMPTS = """INSERT INTO attempts (job_id, number, model_id, provider, key_id, status,
        started_at, finished_at, latency_ms, decision, input_tokens, output_tokens, cost_usd,
        error_class)
    SELECT j.id, n, j.models[1], j.provider, 'key_' || (hashtext(j.id) & 3),
        CASE WHEN n < j.attempt_count OR j.status = 'failed' THEN 'failed' ELSE 'succeeded' END,
        j.created_at, j.finished_at, coalesce(j.latency_ms, 0), 'done',
        j.input_tokens, j.output_tokens,
        CASE WHEN n < j.attempt_count THEN 0.000015
             ELSE j.cost_usd - CASE WHEN j.attempt_count = 2 THEN 0.000015 ELSE 0 END END,
        CASE WHEN n < j.attempt_count OR j.status = 'failed' THEN 'server_error' END
    FROM jobs j, generate_series(1, j.attempt_count) n
    WHERE j.id LIKE 'job_bench_%'"""


def run_reports(*, jobs: int, server_url: str, quiet: bool) -> dict[str, Any]:
    server = make_url(to_sqlalchemy_url(server_url))
    name = f"switchboard_bench_reports_{os.getpid()}"
    admin = create_engine(server, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        from alembic import command

        command.upgrade(alembic_config(url.render_as_string(hide_password=False)), "head")
        timings: dict[str, Any] = {}
        with engine.begin() as conn:
            _say(quiet, f"generating {jobs:,} jobs")
            started = time.perf_counter()
            conn.execute(text(_FILL_JOBS), {"n": jobs})
            conn.execute(text(_FILL_ATTEMPTS))
            timings["generate_s"] = round(time.perf_counter() - started, 1)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        _say(quiet, "rolling up")
        started = time.perf_counter()
        with engine.begin() as conn:
            first = roll_up(conn)
        timings["rollup_first_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        with engine.begin() as conn:
            roll_up(conn)  # the periodic run: the last RECOMPUTE hours again
        timings["rollup_periodic_s"] = round(time.perf_counter() - started, 2)
        with engine.connect() as conn:
            rollup_rows = {
                t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()  # noqa: S608
                for t in ("job_rollups", "latency_rollups", "cost_rollups")
            }
        _say(quiet, "timing reports")
        reports = _time_reports(engine)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
    return {
        "benchmark": "reports",
        "jobs": jobs,
        "rolled_until": first.rolled_until.isoformat() if first.rolled_until else None,
        "rollup_rows": rollup_rows,
        **timings,
        "reports_ms": reports,
    }


def _time_reports(engine: Any) -> dict[str, Any]:
    now = datetime.now(UTC)

    def frame(period: Period) -> Timeframe:
        return Timeframe(now - PERIODS[period], now)

    def stats(period: Period, group: StatsGroup | None) -> Callable[[Session, bool], Any]:
        def report(session: Session, rollups: bool) -> Any:
            read = plan(session, frame(period), use_rollups=rollups)
            r = job_stats(session, read, tenant_id=None, group=group)
            return [(g.key, g.jobs, g.cost_usd, g.percentile(0.95)) for g in [r.overall, *r.groups]]

        return report

    def costs(period: Period, group: CostGroup | None) -> Callable[[Session, bool], Any]:
        def report(session: Session, rollups: bool) -> Any:
            return cost_breakdown(
                session, frame(period), tenant_id=None, group=group, use_rollups=rollups
            )

        return report

    def forecast(session: Session, rollups: bool) -> Any:
        return month_forecast(session, tenant_id=None, now=now)

    cases: dict[str, Callable[[Session, bool], Any]] = {
        "stats_24h": stats(Period.DAY, None),
        "stats_7d_by_model": stats(Period.WEEK, StatsGroup.MODEL),
        "stats_30d_by_tenant": stats(Period.MONTH, StatsGroup.TENANT),
        "costs_30d_by_model": costs(Period.MONTH, CostGroup.MODEL),
        "costs_30d_by_key": costs(Period.MONTH, CostGroup.KEY),
        "costs_30d_by_day": costs(Period.MONTH, CostGroup.DAY),
    }
    out: dict[str, Any] = {}
    with Session(engine) as session:
        for name, case in cases.items():
            rolled, rolled_ms = _median_ms(partial(case, session, True))
            raw, raw_ms = _median_ms(partial(case, session, False))
            out[name] = {"rollup_ms": rolled_ms, "raw_ms": raw_ms, "same_answer": rolled == raw}
        _, out["forecast_ms"] = _median_ms(lambda: forecast(session, True))
    return out


def _median_ms(call: Callable[[], Any], runs: int = 5) -> tuple[Any, float]:
    times = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    return result, round(statistics.median(times), 1)


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        console.print(message)
