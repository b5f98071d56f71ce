"""``switchboard cache``: what the response cache holds, purging it, and its benchmark."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.client import ApiClient
from app.cli.reports import DEFAULT_API, ApiUrl, Tenant

console = Console()
cache = typer.Typer(help="The response cache: its answers by model, and purging them.")


@cache.command("show")
def show(tenant: Tenant = None, api: ApiUrl = DEFAULT_API) -> None:
    """Answers ready to reuse, by the model that produced them, and how the cache is set."""
    with ApiClient(api) as client:
        info: dict[str, Any] = client.request(
            "GET", "/v1/cache", params={"tenant": tenant} if tenant else None
        ).json()
    table = Table("model", "answers", "reused", title="response cache")
    for row in info["by_model"]:
        table.add_row(row["model"] or "(none)", f"{row['entries']:,}", f"{row['hits']:,}")
    table.add_row("total", f"{info['entries']:,}", f"{info['hits']:,}")
    console.print(table)
    semantic = info["semantic"]
    console.print(
        f"default mode {info['default_mode']}, ttl {info['ttl_s']:,} s, at most "
        f"{info['max_entries']:,} answers per tenant; {info['pending']:,} in flight; semantic: "
        + (
            f"{semantic['embedding_model']} on {semantic['index']}, threshold "
            f"{semantic['threshold']}"
            if semantic["available"]
            else "not configured (SWITCHBOARD_CACHE_EMBEDDING_MODEL)"
        ),
        markup=False,
    )


@cache.command("purge")
def purge(
    model: Annotated[str | None, typer.Option(help="Only the answers of this model.")] = None,
    tenant: Tenant = None,
    api: ApiUrl = DEFAULT_API,
) -> None:
    """Delete cached answers (the tenant's; with the admin key every tenant's, or one)."""
    params = {k: v for k, v in (("model", model), ("tenant", tenant)) if v}
    with ApiClient(api) as client:
        purged = client.request("DELETE", "/v1/cache", params=params).json()
    console.print(f"deleted {purged['deleted']:,} cached answer(s)", markup=False)


def bench_cache(
    lines: Annotated[int, typer.Option(help="Requests in the batch.")] = 1000,
    distinct: Annotated[int, typer.Option(help="Distinct prompts among them.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """A batch with repeated prompts, then the same batch again: provider calls, hit rate,
    cost paid and cost saved."""
    import json
    import sys

    from app.bench.cache import run_cache

    result = run_cache(lines=lines, distinct=distinct, quiet=as_json)
    sys.stdout.write(json.dumps(result) + "\n")


def install(cli: typer.Typer, bench: typer.Typer) -> None:
    """Add ``switchboard cache`` and ``switchboard bench cache``."""
    cli.add_typer(cache, name="cache")
    bench.command("cache")(bench_cache)
