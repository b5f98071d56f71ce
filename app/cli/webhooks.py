"""``switchboard webhooks ...``: the webhook delivery pool."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from app.cli.options import MetricsHost, MetricsPort
from app.config import get_settings
from app.embedded import resolve_urls
from app.errors import InvalidInput, Unavailable

webhooks_cli = typer.Typer(help="Webhook delivery.", no_args_is_help=True)


@webhooks_cli.command("worker")
def worker(
    concurrency: Annotated[int, typer.Option(help="Concurrent deliveries (threads).")] = 8,
    name: Annotated[str | None, typer.Option(help="Worker node name.")] = None,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = None,
) -> None:
    """Run a webhook delivery pool: the webhooks queue (and maintenance: the outbox sweep)."""
    settings = get_settings()
    urls = resolve_urls(settings.database_url, settings.redis_url, settings.data_dir)
    if urls is None:
        raise Unavailable(
            "no database: set DATABASE_URL and REDIS_URL, or start `switchboard up` first"
        )
    if concurrency < 1:
        raise InvalidInput("--concurrency must be at least 1", param="concurrency")
    os.environ["DATABASE_URL"] = urls.database_url
    os.environ["REDIS_URL"] = urls.redis_url
    # Provider calls never run here; the per-process pool only needs a few connections.
    os.environ["SWITCHBOARD_WORKER_CONCURRENCY"] = str(concurrency)
    get_settings.cache_clear()

    from app.metrics.worker import serve
    from app.webhooks.outbox import WEBHOOKS_QUEUE
    from workers.celery_app import MAINTENANCE_QUEUE, celery_app

    serve(get_settings(), port=metrics_port, host=metrics_host)  # before the pool: it blocks
    celery_app.worker_main(
        [
            "worker",
            "--queues",
            f"{MAINTENANCE_QUEUE},{WEBHOOKS_QUEUE}",
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "--hostname",
            f"{name or 'webhooks'}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            loglevel,
        ]
    )
