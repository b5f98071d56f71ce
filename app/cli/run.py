"""The long-running commands: ``up``, ``worker`` and ``migrate``."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from rich.console import Console

from app.cli.stack import Stack, StackOptions
from app.config import Settings, get_settings
from app.constants import provider_queues
from app.db.migrate import migrate
from app.embedded import EmbeddedStack, resolve_urls
from app.errors import InvalidInput, InvalidSettings, Unavailable
from app.registry.catalog import CatalogError
from app.registry.service import SyncReport
from app.tenants.keys import ADMIN_KEY_FILE

console = Console()


def migrate_as_set(settings: Settings, url: str, simulator_url: str | None = None) -> SyncReport:
    """``migrate`` with the settings' simulator and provider addresses (``base_urls``); a
    catalog they make invalid is ``InvalidSettings``, raised before the database is touched."""
    try:
        return migrate(
            url,
            simulator_url=simulator_url or settings.resolved_simulator_url,
            base_urls=settings.base_urls,
        )
    except CatalogError as exc:
        raise InvalidSettings(" ".join(str(exc).split())) from exc


def run_migrate(settings: Settings | None = None) -> SyncReport:
    """Migrate the configured database, or the embedded one (started for the occasion)."""
    settings = settings or get_settings()
    urls = resolve_urls(settings.database_url, settings.redis_url, settings.data_dir)
    if settings.database_url:
        return migrate_as_set(settings, settings.database_url)
    if urls is not None:
        return migrate_as_set(settings, urls.database_url)
    embedded = EmbeddedStack(settings.data_dir)
    started = embedded.start()
    try:
        return migrate_as_set(settings, started.database_url)
    finally:
        embedded.stop()


def default_providers(stack: Stack, settings: Settings) -> list[str]:
    """Simulated providers when the simulator runs, plus every provider with a key set."""
    from app.db.engine import make_engine, make_sessionmaker
    from app.registry.service import load_registry

    assert stack.urls is not None
    engine = make_engine(stack.urls.database_url, pool_size=1)
    try:
        with make_sessionmaker(engine)() as session:
            registry = load_registry(session)
    finally:
        engine.dispose()
    chosen = []
    for p in registry.providers.values():
        keyed = p.api_key_env is not None and bool(os.environ.get(p.api_key_env))
        if p.enabled and ((p.simulated and stack.simulator_url) or (keyed and not p.simulated)):
            chosen.append(p.name)
    return sorted(chosen)


def up_options(
    settings: Settings,
    *,
    api_port: int | None = 8000,
    flower_port: int | None = 5555,
    simulator: bool = True,
    concurrency: int = 32,
) -> StackOptions:
    """The stack ``switchboard up`` runs: the configured services, else embedded ones."""
    return StackOptions(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        api_port=api_port,
        flower_port=flower_port,
        simulator=simulator,
        simulator_port=settings.simulator_port,
        concurrency=concurrency,
    )


def start_up(stack: Stack, settings: Settings, *, providers: Sequence[str]) -> list[str]:
    """Start everything ``switchboard up`` runs, in its order, until every worker answers;
    returns the providers that got a pool."""
    urls = stack.start_services()
    sim_url = stack.start_simulator() if stack.options.simulator else settings.simulator_url
    migrate_as_set(settings, urls.database_url, sim_url)
    chosen = list(providers) or default_providers(stack, settings)
    if not chosen:
        raise InvalidInput(
            "no provider to run workers for: start the simulator or set a provider's key",
            code="no_providers",
        )
    for name in chosen:
        stack.start_workers(name)
    stack.start_webhook_workers()
    stack.start_beat()
    stack.start_api()
    stack.start_flower()
    stack.wait_for_workers()
    return chosen


def run_up(
    *,
    api_port: int,
    flower_port: int | None,
    simulator: bool,
    providers: Sequence[str],
    concurrency: int,
) -> None:
    settings = get_settings()
    stack = Stack(
        up_options(
            settings,
            api_port=api_port,
            flower_port=flower_port,
            simulator=simulator,
            concurrency=concurrency,
        )
    )
    try:
        chosen = start_up(stack, settings, providers=providers)
        console.print(f"[bold green]Switchboard is up[/] — workers for {', '.join(chosen)}")
        console.print(f"  API       {stack.api_url}   (docs: {stack.api_url}/docs)")
        console.print(f"  Dashboard {stack.api_url}/dashboard")
        scraped = [c.metrics_url for kids in stack.workers.values() for c in kids if c.metrics_url]
        console.print(
            f"  Metrics   {stack.api_url}/metrics, and each worker's: {' '.join(scraped)}"
        )
        if stack.flower_url:
            line = f"  Flower    {stack.flower_url}   ({stack.flower_login.describe()})"
            console.print(line, markup=False, highlight=False)
        if stack.simulator_url:
            console.print(f"  Simulator {stack.simulator_url}/_stats")
        console.print(f"  Logs      {stack.log_dir}")
        where = (
            "SWITCHBOARD_ADMIN_KEY"
            if os.environ.get("SWITCHBOARD_ADMIN_KEY")
            else str(stack.options.data_dir.resolve() / ADMIN_KEY_FILE)
        )
        console.print(f"  Admin key {where} (the CLI here uses it; send it as a Bearer token)")
        console.print("Ctrl-C stops everything.")
        while True:
            for child in stack.children:
                if not child.alive():
                    raise Unavailable(f"{child.name} exited unexpectedly:\n{child.tail()}")
            time.sleep(0.5)
    finally:
        stack.stop()


def run_worker(
    provider: str,
    *,
    concurrency: int,
    pool: str,
    name: str | None,
    events: bool,
    loglevel: str,
    metrics_port: int | None = None,
    metrics_host: str | None = None,
) -> None:
    settings = get_settings()
    urls = resolve_urls(settings.database_url, settings.redis_url, settings.data_dir)
    if urls is None:
        raise Unavailable(
            "no database: set DATABASE_URL and REDIS_URL, or start `switchboard up` first"
        )
    if pool not in ("threads", "gevent"):
        raise InvalidInput("--pool must be threads or gevent", param="pool")
    # The Celery app and the per-process resources read these when they are first imported.
    os.environ["DATABASE_URL"] = urls.database_url
    os.environ["REDIS_URL"] = urls.redis_url
    os.environ["SWITCHBOARD_WORKER_CONCURRENCY"] = str(concurrency)
    get_settings.cache_clear()
    _check_provider(provider, urls.database_url)

    import logging

    from app.metrics.worker import serve
    from workers.celery_app import MAINTENANCE_QUEUE, celery_app

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per provider call is noise
    serve(get_settings(), port=metrics_port, host=metrics_host)  # before the pool: it blocks

    argv = [
        "worker",
        "--queues",  # maintenance first: rare and small, it must not starve behind a backlog
        ",".join([MAINTENANCE_QUEUE, *provider_queues(provider)]),
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--hostname",
        f"{name or provider}@%h",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        loglevel,
    ]
    if events:
        argv.append("--task-events")
    celery_app.worker_main(argv)


def _check_provider(provider: str, database_url: str) -> None:
    from app.db.engine import make_engine, make_sessionmaker
    from app.registry.service import load_registry

    engine = make_engine(database_url, pool_size=1)
    try:
        with make_sessionmaker(engine)() as session:
            registry = load_registry(session)
    finally:
        engine.dispose()
    if provider not in registry.providers:
        known = ", ".join(sorted(registry.providers))
        raise InvalidInput(
            f"unknown provider {provider!r}; known: {known}", code="unknown_provider"
        )
