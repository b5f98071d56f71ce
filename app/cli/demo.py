"""``switchboard demo``: the whole path on real parts, in one command.

Starts an embedded PostgreSQL and Redis (unless DATABASE_URL / REDIS_URL are set), the
provider simulator — with one provider injecting overloads, server errors and rate limits —
the API, a worker pool per simulated provider and Flower; submits a batch, shows its progress,
prints the ledger per model, and stops everything it started.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, pool

from app.cli.client import ApiClient
from app.cli.stack import Stack, StackOptions
from app.config import get_settings
from app.db.engine import make_sessionmaker, unit_of_work
from app.db.migrate import migrate
from app.registry.service import update_provider
from app.simulator.config import ErrorRates, SimulatorConfig, default_config
from app.simulator.control import with_models, with_provider

# Wide enough for the ledger table even when the output is not a terminal (e.g. `make demo | tee`).
console = Console(width=max(Console().width, 120))

DEMO_PROVIDERS = ("sim-openai", "sim-anthropic", "sim-gemini")
# (model or fallback chain, share of the batch)
DEMO_MIX: list[tuple[str | list[str], int]] = [
    (["sim-gpt-mini", "sim-claude-haiku"], 35),
    (["sim-claude-haiku", "sim-gpt-mini"], 30),
    (["sim-claude-sonnet", "sim-gpt-large"], 15),
    ("sim-gemini-flash", 20),
]
TOPICS = [
    "the causes of the 1929 crash",
    "how a transformer attends",
    "why the sky is blue",
    "the rules of cricket",
    "a recipe for sourdough",
    "the history of the printing press",
    "how vaccines train immunity",
    "the plot of Hamlet",
    "what a monad is",
    "tides and the moon",
]


# sim-anthropic enforces this limit, and the registry is told so: the gateway paces itself
# and is never refused for it; the 429s left are the ones the provider injects at random.
FLAKY_LIMITS = {"rpm": 1200, "burst_s": 2.0}


def demo_simulator_config() -> SimulatorConfig:
    """The default simulated providers; sim-anthropic misbehaves like a busy real provider."""
    errors = ErrorRates(overloaded=0.06, server_error=0.03, rate_limit=0.04)
    config = with_provider(default_config(), "sim-anthropic", **FLAKY_LIMITS)
    return with_models(config, "sim-anthropic", lambda m: m.model_copy(update={"errors": errors}))


def _model_for(i: int) -> str | list[str]:
    """A deterministic spread of the batch over DEMO_MIX, by share."""
    slot = (i * 7919) % sum(share for _, share in DEMO_MIX)
    for model, share in DEMO_MIX:
        if slot < share:
            return model
        slot -= share
    raise AssertionError("unreachable: slot is below the total share")


def demo_requests(count: int) -> list[dict[str, Any]]:
    requests = []
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        requests.append(
            {
                "custom_id": f"demo-{i:05d}",
                "model": _model_for(i),
                "messages": [
                    {"role": "system", "content": "You are a concise explainer."},
                    {"role": "user", "content": f"In three sentences, explain {topic} (#{i})."},
                ],
                "max_tokens": 128,
                "metadata": {"topic": topic},
            }
        )
    return requests


def run_demo(*, jobs: int) -> None:
    settings = get_settings()
    data_dir = settings.data_dir / "demo"
    data_dir.mkdir(parents=True, exist_ok=True)
    sim_config = data_dir / "simulator.json"
    sim_config.write_text(demo_simulator_config().model_dump_json(indent=2))
    stack = Stack(
        StackOptions(
            data_dir=data_dir,
            database_url=settings.database_url,
            redis_url=settings.redis_url,
            api_port=settings.api_port,
            flower_port=settings.flower_port,
            simulator_config=sim_config,
            concurrency=32,
        )
    )
    started = time.monotonic()
    try:
        with console.status("starting PostgreSQL, Redis, the simulator, the API, workers, Flower"):
            urls = stack.start_services()
            sim_url = stack.start_simulator()
            migrate(urls.database_url, simulator_url=sim_url)
            engine = create_engine(urls.database_url, poolclass=pool.NullPool)
            with unit_of_work(make_sessionmaker(engine)) as session:
                update_provider(session, "sim-anthropic", dict(FLAKY_LIMITS))
            engine.dispose()
            for provider in DEMO_PROVIDERS:
                stack.start_workers(provider)
            stack.start_beat()
            api_url = stack.start_api()
            flower_url = stack.start_flower()
            stack.wait_for_workers()
        console.print(
            f"stack up in {time.monotonic() - started:.1f}s — "
            f"workers for {', '.join(DEMO_PROVIDERS)}"
        )
        with ApiClient(api_url, api_key=stack.admin_key) as client:
            batch = client.submit_batch({"requests": demo_requests(jobs), "priority": "normal"})
            console.print(f"submitted batch {batch['id']} with {jobs} jobs")
            batch = client.wait_for_batch(batch["id"])
            usage = client.usage(batch["id"])
        _print_report(batch, usage)
        console.print(f"\nAPI docs  {api_url}/docs")
        console.print(f"Status    {api_url}/dashboard   (it asks for the admin key)")
        console.print(f"Metrics   {api_url}/metrics")
        if flower_url:
            login = stack.flower_login.describe()
            console.print(f"Flower    {flower_url}   ({login})", markup=False, highlight=False)
        console.print(f"Logs      {Path(stack.log_dir)}")
        console.print("(the demo stops the stack now; `switchboard up` keeps it running)")
    finally:
        with console.status("stopping"):
            stack.stop()


def _print_report(batch: dict[str, Any], usage: dict[str, Any]) -> None:
    counts = batch["request_counts"]
    table = Table(title=f"batch {batch['id']} — {batch['status']}")
    for name in (
        "model",
        "jobs",
        "ok",
        "failed",
        "attempts",
        "tokens in",
        "tokens out",
        "cost USD",
        "p50 ms",
        "p95 ms",
    ):
        table.add_column(name, justify="left" if name == "model" else "right", no_wrap=True)
    for row in usage["data"]:
        table.add_row(
            row["model"],
            str(row["jobs"]),
            str(row["succeeded"]),
            str(row["failed"]),
            str(row["attempts"]),
            f"{row['input_tokens']:,}",
            f"{row['output_tokens']:,}",
            row["cost_usd"],
            _ms(row["latency_p50_ms"]),
            _ms(row["latency_p95_ms"]),
        )
    table.add_section()
    table.add_row(
        "total",
        str(counts["total"]),
        str(counts["completed"]),
        str(counts["failed"]),
        "",
        f"{batch['usage']['input_tokens']:,}",
        f"{batch['usage']['output_tokens']:,}",
        batch["cost_usd"],
        "",
        "",
    )
    console.print(table)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
