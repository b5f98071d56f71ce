"""``switchboard routing``: ask which model a strategy would choose, and see live performance."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.client import ApiClient
from app.routing.selection import STRATEGIES

routing = typer.Typer(
    help="Model selection: dry-run a strategy, read live performance.", no_args_is_help=True
)
console = Console()

ApiUrl = Annotated[
    str,
    typer.Option("--api", envvar="SWITCHBOARD_API_URL", help="Base URL of the Switchboard API."),
]
DEFAULT_API = "http://127.0.0.1:8000"


@routing.command()
def choose(
    strategy: Annotated[str, typer.Option(help=f"One of: {', '.join(STRATEGIES)}.")] = "balanced",
    prompt: Annotated[str, typer.Option(help="The prompt to estimate tokens from.")] = "Hello",
    max_tokens: Annotated[int | None, typer.Option(min=1)] = None,
    capability: Annotated[
        list[str] | None, typer.Option(help="A required capability (repeatable).")
    ] = None,
    max_cost: Annotated[str | None, typer.Option(help="Cost cap in USD, e.g. 0.001.")] = None,
    prefer: Annotated[
        list[str] | None, typer.Option(help="A preferred model (repeatable).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="A model to avoid (repeatable).")
    ] = None,
    api: ApiUrl = DEFAULT_API,
) -> None:
    """Show the model (and fallbacks) a strategy would choose, without making a job."""
    route: dict[str, Any] = {
        "capabilities": capability or None,
        "max_cost_usd": max_cost,
        "prefer_models": prefer or [],
        "exclude_models": exclude or [],
    }
    payload: dict[str, Any] = {
        "strategy": strategy,
        "prompt": prompt,
        "route": {k: v for k, v in route.items() if v not in (None, [])},
    }
    if max_tokens is not None:
        payload["max_tokens"] = max_tokens
    with ApiClient(api) as client:
        result = client.route(payload)
    console.print(result["reason"], markup=False, highlight=False)
    console.print(f"chain: {' -> '.join(result['chain'])}", markup=False, highlight=False)


@routing.command()
def performance(
    model: Annotated[str | None, typer.Argument(help="One model; all when omitted.")] = None,
    api: ApiUrl = DEFAULT_API,
) -> None:
    """Live latency percentiles, success rate and sample counts per model."""
    with ApiClient(api) as client:
        data = client.performance(model)
    table = Table("model", "samples", "success", "p50 ms", "p95 ms", "p99 ms", "expected ms")
    for p in data:
        if model is None and p["samples"] == 0:
            continue
        table.add_row(
            p["model"],
            str(p["samples"]),
            "-" if p["success_rate"] is None else f"{p['success_rate']:.1%}",
            *("-" if p[k] is None else f"{p[k]:.0f}" for k in _PERCENTILES),
            "-" if p["expected_latency_ms"] is None else f"{p['expected_latency_ms']:.0f}",
        )
    console.print(table)


_PERCENTILES = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")
