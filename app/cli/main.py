"""``switchboard``: run the stack, submit work, read results, benchmark."""

from __future__ import annotations

import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from app.cli import policies
from app.cli.cache import install as install_cache
from app.cli.client import ApiClient, first_url
from app.cli.keys import keys_cli
from app.cli.options import MetricsHost, MetricsPort
from app.cli.reports import install as install_reports
from app.cli.routing import routing
from app.cli.webhooks import webhooks_cli
from app.errors import InvalidInput, SwitchboardError

cli = typer.Typer(
    name="switchboard",
    help="A durable, multi-provider LLM job gateway.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
bench = typer.Typer(help="Benchmarks; each prints one JSON object.", no_args_is_help=True)
cli.add_typer(bench, name="bench")
cli.add_typer(policies.app, name="policies")
install_reports(cli, bench)  # switchboard stats / costs / bench reports
install_cache(cli, bench)  # switchboard cache show / purge / bench cache
cli.add_typer(routing, name="routing")
cli.add_typer(webhooks_cli, name="webhooks")
cli.add_typer(keys_cli, name="keys")

console = Console()
err_console = Console(stderr=True)

ApiUrl = Annotated[
    str,
    typer.Option("--api", envvar="SWITCHBOARD_API_URL", help="Base URL of the Switchboard API."),
]
DEFAULT_API = "http://127.0.0.1:8000"


def _api(url: str) -> ApiClient:
    return ApiClient(url)


# -- running the stack ---------------------------------------------------------------------
@cli.command()
def up(
    api_port: Annotated[int, typer.Option(help="Port of the API.")] = 8000,
    flower_port: Annotated[int, typer.Option(help="Port of Flower (0: don't start it).")] = 5555,
    simulator: Annotated[bool, typer.Option(help="Start the provider simulator.")] = True,
    provider: Annotated[
        list[str] | None,
        typer.Option(
            help="Start a worker pool for this provider (repeatable). "
            "Default: the simulated providers and every provider with a key set."
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Slots per worker pool.")] = 32,
) -> None:
    """Run the whole stack in the foreground until Ctrl-C (embedded services unless
    DATABASE_URL and REDIS_URL are set)."""
    from app.cli.run import run_up

    run_up(
        api_port=api_port,
        flower_port=flower_port or None,
        simulator=simulator,
        providers=provider or [],
        concurrency=concurrency,
    )


@cli.command()
def worker(
    provider: Annotated[str, typer.Option(help="The provider whose queues this pool consumes.")],
    concurrency: Annotated[int, typer.Option(help="Concurrent jobs (threads).")] = 32,
    pool: Annotated[str, typer.Option(help="Celery pool: threads or gevent.")] = "threads",
    name: Annotated[str | None, typer.Option(help="Worker node name.")] = None,
    events: Annotated[bool, typer.Option(help="Send task events (for Flower).")] = True,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = None,
) -> None:
    """Run one worker pool for a provider: its high, normal and low queues, in that order."""
    from app.cli.run import run_worker

    run_worker(
        provider,
        concurrency=concurrency,
        pool=pool,
        name=name,
        events=events,
        loglevel=loglevel,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )


@cli.command()
def simulate(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
    config: Annotated[
        Path | None,
        typer.Option(help="Simulator config (JSON or TOML).", exists=True, dir_okay=False),
    ] = None,
) -> None:
    """Run the provider simulator (OpenAI, Anthropic, Gemini and Ollama wire formats)."""
    from app.simulator.config import default_config, load_config
    from app.simulator.server import run

    run(host, port, load_config(config) if config else default_config())


@cli.command()
def migrate() -> None:
    """Bring the database to the current schema and load the model catalog."""
    from app.cli.run import run_migrate

    report = run_migrate()
    console.print(f"migrated: {report.providers} providers, {report.models} models in the registry")


@cli.command()
def flower(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5555,
    address: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    events: Annotated[
        bool, typer.Option(help="Have Flower turn on the workers' task events.")
    ] = True,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run Flower for the workers, behind basic auth (SWITCHBOARD_FLOWER_USER and
    SWITCHBOARD_FLOWER_PASSWORD, FLOWER_BASIC_AUTH, or a password made in the data folder)."""
    from app.cli.flower import run_flower

    run_flower(port=port, address=address, events=events, loglevel=loglevel)


# -- using it ------------------------------------------------------------------------------
@cli.command()
def submit(
    file: Annotated[Path, typer.Argument(help="JSONL file: one request per line.", dir_okay=False)],
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the batch, with a progress bar.")
    ] = False,
    priority: Annotated[str | None, typer.Option(help="high, normal or low (default low).")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Resubmitting returns the same batch.")
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            help="Every line's url: /v1/chat/completions, /v1/embeddings or /v1/completions "
            "(default: the first line's url)."
        ),
    ] = None,
    api: ApiUrl = DEFAULT_API,
) -> None:
    """Submit a JSONL file as one batch."""
    try:
        body = file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}", code="unreadable_file") from None
    with _api(api) as client:
        batch = client.submit_jsonl(
            body,
            priority=priority,
            idempotency_key=idempotency_key,
            endpoint=endpoint or first_url(body),
        )
        console.print(f"batch {batch['id']}: {batch['request_counts']['total']} requests queued")
        if wait:
            batch = client.wait_for_batch(batch["id"])
            _print_batch(batch)


@cli.command()
def status(batch_id: Annotated[str, typer.Argument()], api: ApiUrl = DEFAULT_API) -> None:
    """Show a batch's status and counts."""
    with _api(api) as client:
        _print_batch(client.batch(batch_id))


@cli.command()
def results(
    batch_id: Annotated[str, typer.Argument()],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
    api: ApiUrl = DEFAULT_API,
) -> None:
    """Write a batch's finished results as JSONL (join on custom_id)."""
    with _api(api) as client:
        lines = client.results_jsonl(batch_id)
        if output is None:
            for line in lines:
                sys.stdout.write(f"{line}\n")
            return
        with output.open("w") as out:
            count = 0
            for line in lines:
                out.write(f"{line}\n")
                count += 1
        console.print(f"wrote {count} results to {output}")


@cli.command()
def models(
    api: ApiUrl = DEFAULT_API,
    provider: Annotated[str | None, typer.Option(help="Only this provider's models.")] = None,
    capability: Annotated[
        list[str] | None, typer.Option(help="Only models with this capability (repeatable).")
    ] = None,
) -> None:
    """List the models this gateway serves, with prices per million tokens."""
    with _api(api) as client:
        data = client.models(provider=provider, capabilities=capability)
    table = Table("model", "provider", "context", "in $/Mtok", "out $/Mtok", "capabilities")
    for m in data:
        table.add_row(
            m["id"] + (" (deprecated)" if m["deprecated"] else ""),
            m["provider"],
            f"{m['context_window']:,}",
            m["pricing"]["input_per_mtok"],
            m["pricing"]["output_per_mtok"],
            ", ".join(m["capabilities"]),
        )
    console.print(table)


@cli.command("new-secret-key")
def new_secret_key() -> None:
    """Print a new master key for SWITCHBOARD_SECRET_KEY (encrypts stored provider keys)."""
    from app.registry.secrets import new_master_key

    sys.stdout.write(new_master_key() + "\n")


@cli.command()
def demo(
    jobs: Annotated[int, typer.Option(help="Jobs in the demo batch.")] = 300,
) -> None:
    """Start the stack, run a batch over simulated providers, print the ledger, stop."""
    from app.cli.demo import run_demo

    run_demo(jobs=jobs)


@bench.command("throughput")
def bench_throughput(
    jobs: Annotated[int, typer.Option(help="Jobs to push through the pipeline.")] = 5000,
    accept_jobs: Annotated[
        int, typer.Option(help="Jobs in the batch whose acceptance is timed.")
    ] = 10_000,
    processes: Annotated[int, typer.Option(help="Worker processes per provider.")] = 1,
    concurrency: Annotated[int, typer.Option(help="Threads per worker process.")] = 8,
    pool: Annotated[str, typer.Option(help="Celery pool: threads or gevent.")] = "threads",
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """Jobs/s from submission to ledger-recorded completion at zero provider latency, and
    the time to accept a 10,000-job batch, on the embedded default."""
    from app.bench.throughput import run_throughput

    _emit(
        run_throughput(
            jobs=jobs,
            accept_jobs=accept_jobs,
            processes=processes,
            concurrency=concurrency,
            pool=pool,
            quiet=as_json,
        )
    )


@bench.command("sync")
def bench_sync(
    requests: Annotated[int, typer.Option(help="Requests each way.")] = 200,
    latency_ms: Annotated[float, typer.Option(help="The simulated provider's latency.")] = 20.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """What answering on the same request (``POST /v1/chat/completions``) adds over calling
    the provider directly: the difference of the medians."""
    from app.bench.sync import run_sync

    _emit(run_sync(requests=requests, latency_ms=latency_ms, quiet=as_json))


@bench.command("drain")
def bench_drain(
    jobs: Annotated[int, typer.Option(help="Jobs in the batch.")] = 1000,
    keys: Annotated[int, typer.Option(help="API keys of the provider (each with the limits).")] = 1,
    rpm: Annotated[int, typer.Option(help="Requests per minute, per key.")] = 1200,
    tpm: Annotated[int, typer.Option(help="Tokens per minute, per key.")] = 150_000,
    burst_s: Annotated[float, typer.Option(help="Bucket size in seconds of the limit.")] = 5.0,
    priority: Annotated[str, typer.Option(help="Priority of the batch.")] = "low",
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """Drain a batch against rate-limited simulated keys: wall time vs what the limits allow,
    and the 429s the provider had to answer."""
    from app.bench.drain import run_drain

    _emit(
        run_drain(
            jobs=jobs,
            keys=keys,
            rpm=rpm,
            tpm=tpm,
            burst_s=burst_s,
            priority=priority,
            quiet=as_json,
        )
    )


@bench.command("priority")
def bench_priority(
    backlog: Annotated[int, typer.Option(help="Low-priority jobs saturating the provider.")] = 3000,
    high: Annotated[int, typer.Option(help="High-priority jobs arriving one at a time.")] = 40,
    rpm: Annotated[int, typer.Option(help="The provider's requests per minute.")] = 600,
    burst_s: Annotated[float, typer.Option(help="Bucket size in seconds of the limit.")] = 5.0,
    interval_s: Annotated[float, typer.Option(help="Seconds between high-priority jobs.")] = 0.5,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """Queue wait of high-priority jobs while a low-priority backlog saturates the provider."""
    from app.bench.priority import run_priority

    _emit(
        run_priority(
            backlog=backlog,
            high=high,
            rpm=rpm,
            burst_s=burst_s,
            interval_s=interval_s,
            quiet=as_json,
        )
    )


class OutageMode(StrEnum):
    DOWN = "down"
    FLAKY = "flaky"


@bench.command("outage")
def bench_outage(
    mode: Annotated[
        OutageMode, typer.Option(help="down: no answers; flaky: 30% answered 500.")
    ] = OutageMode.DOWN,
    jobs: Annotated[int, typer.Option(help="Jobs, before and during the outage each.")] = 200,
    rate: Annotated[float, typer.Option(help="Jobs submitted per second.")] = 20.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """A primary provider down (or flaky): success through the fallback, added latency,
    calls per job, and calls to the dead provider once its breaker opened."""
    from app.bench.outage import run_outage

    chosen: Literal["down", "flaky"] = "down" if mode is OutageMode.DOWN else "flaky"
    _emit(run_outage(jobs=jobs, mode=chosen, rate_per_s=rate, quiet=as_json))


@bench.command("chaos")
def bench_chaos(
    jobs: Annotated[int, typer.Option(help="Jobs per scenario.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """Kill a worker, restart and flush Redis, restart Postgres, and have a provider go down,
    send garbage and hang — each mid-batch; then count lost and duplicated jobs."""
    from app.bench.chaos import run_chaos

    _emit(run_chaos(jobs=jobs, quiet=as_json))


def _emit(result: dict[str, Any]) -> None:
    import json

    sys.stdout.write(json.dumps(result) + "\n")


def _print_batch(batch: dict[str, Any]) -> None:
    counts = batch["request_counts"]
    console.print(
        f"batch {batch['id']}: {batch['status']} — {counts['completed']} succeeded, "
        f"{counts['failed']} failed of {counts['total']}; "
        f"{batch['usage']['input_tokens']:,} in / {batch['usage']['output_tokens']:,} out tokens, "
        f"${batch['cost_usd']}"
    )


# -- entry point ---------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every error ends as one line on stderr and a non-zero exit."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        cli(args=argv, standalone_mode=False)
    except SwitchboardError as exc:
        _say(f"error: {exc.code}: {exc.message}")
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # a usage error: unknown command or option, bad value
        _say(f"error: {' '.join(exc.format_message().split())}")
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _say("interrupted")
        sys.exit(130)


def _say(line: str) -> None:
    """One line on stderr, never wrapped to the terminal's width."""
    err_console.print(line, markup=False, highlight=False, soft_wrap=True)
