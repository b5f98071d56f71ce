"""``switchboard stats`` and ``switchboard costs``: the report endpoints as rich tables."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.client import ApiClient

console = Console()

ApiUrl = Annotated[
    str,
    typer.Option("--api", envvar="SWITCHBOARD_API_URL", help="Base URL of the Switchboard API."),
]
DEFAULT_API = "http://127.0.0.1:8000"


class PeriodChoice(StrEnum):
    HOUR = "1h"
    DAY = "24h"
    WEEK = "7d"
    MONTH = "30d"


class StatsBy(StrEnum):
    PROVIDER = "provider"
    MODEL = "model"
    TENANT = "tenant"
    PROJECT = "project"
    PRIORITY = "priority"


class CostsBy(StrEnum):
    MODEL = "model"
    PROVIDER = "provider"
    TENANT = "tenant"
    PROJECT = "project"
    KEY = "key"
    DAY = "day"


Period = Annotated[PeriodChoice, typer.Option(help="Window ending now.")]
Tenant = Annotated[str | None, typer.Option(help="Admin: one tenant (default: all).")]


def stats(
    period: Period = PeriodChoice.DAY,
    by: Annotated[StatsBy | None, typer.Option(help="Group rows by this.")] = None,
    tenant: Tenant = None,
    api: ApiUrl = DEFAULT_API,
) -> None:
    """Jobs, success rate, latency percentiles, tokens and errors over a period."""
    params = {"period": period.value, **({"group_by": by.value} if by else {})}
    if tenant:
        params["tenant"] = tenant
    with ApiClient(api) as client:
        report = client.stats(params)
    table = Table(
        by.value if by else "",
        "jobs",
        "succeeded",
        "failed",
        "success",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "tokens in",
        "tokens out",
        "cost $",
        title=f"jobs finished {report['start'][:19]} .. {report['end'][:19]} UTC",
    )
    rows = [*report["data"], {**report["overall"], "key": "total"}]
    for r in rows:
        table.add_row(
            r["key"] if r["key"] is not None else "(none)",
            f"{r['jobs']:,}",
            f"{r['by_status'].get('succeeded', 0):,}",
            f"{r['by_status'].get('failed', 0):,}",
            _pct(r["success_rate"]),
            _ms(r["latency_ms"]["p50"]),
            _ms(r["latency_ms"]["p95"]),
            _ms(r["latency_ms"]["p99"]),
            f"{r['tokens']['input']:,}",
            f"{r['tokens']['output']:,}",
            r["cost_usd"],
        )
    console.print(table)
    errors = report["overall"]["errors"]
    if errors:
        console.print(
            "errors: " + ", ".join(f"{k} {v:,}" for k, v in sorted(errors.items())), markup=False
        )


def costs(
    period: Period = PeriodChoice.MONTH,
    by: Annotated[CostsBy, typer.Option(help="Break the total down by this.")] = CostsBy.MODEL,
    tenant: Tenant = None,
    api: ApiUrl = DEFAULT_API,
) -> None:
    """Total cost with a breakdown and each part's share, and this month's forecast."""
    params = {"period": period.value, "group_by": by.value}
    if tenant:
        params["tenant"] = tenant
    with ApiClient(api) as client:
        report = client.costs(params)
    table = Table(
        by.value,
        "cost $",
        "share",
        "attempts",
        "failed",
        "tokens in",
        "tokens out",
        title=f"cost of jobs finished {report['start'][:19]} .. {report['end'][:19]} UTC",
    )
    for r in report["data"]:
        table.add_row(
            r["key"] if r["key"] is not None else "(none)",
            r["cost_usd"],
            f"{r['percent']:.2f}%",
            f"{r['attempts']:,}",
            f"{r['failed_attempts']:,}",
            f"{r['input_tokens']:,}",
            f"{r['output_tokens']:,}",
        )
    table.add_row(
        "total", report["total_cost_usd"], "100.00%" if report["data"] else "", style="bold"
    )
    console.print(table)
    f: dict[str, Any] = report["forecast"]
    console.print(
        f"{f['month']}: ${f['month_to_date_usd']} so far; ${f['daily_average_usd']}/day over the "
        f"last 7 days × {f['days_left']:.1f} days left → forecast ${f['forecast_usd']}",
        markup=False,
    )


def bench_reports(
    jobs: Annotated[int, typer.Option(help="Jobs to generate (with their attempts).")] = 1_000_000,
    database: Annotated[
        str, typer.Option(help="Postgres server URL; a scratch database is made and dropped.")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """Time /v1/stats and /v1/costs queries (median of 5) on a generated ledger, with
    rollups and raw, and the rollup itself."""
    import json
    import sys

    from app.bench.reports import run_reports

    sys.stdout.write(json.dumps(run_reports(jobs=jobs, server_url=database, quiet=as_json)) + "\n")


def install(cli: typer.Typer, bench: typer.Typer) -> None:
    """Add the report commands to the CLI and its benchmark group."""
    cli.command()(stats)
    cli.command()(costs)
    bench.command("reports")(bench_reports)


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
