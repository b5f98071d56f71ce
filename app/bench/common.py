"""What every benchmark needs: a stack on the embedded default, and simulator configs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from app.cli.stack import Stack, StackOptions
from app.db.migrate import migrate
from app.simulator.config import SimModel, SimulatorConfig, default_config

console = Console(stderr=True)


# Recovery settings for runs that break things on purpose: short leases and a reconciler
# every second, so that a run shows recovery in seconds rather than minutes.
FAST_RECOVERY_ENV = {
    "SWITCHBOARD_ATTEMPT_TIMEOUT_S": "5",
    "SWITCHBOARD_LEASE_MARGIN_S": "3",
    "SWITCHBOARD_REGISTRY_REFRESH_S": "0.5",
    "SWITCHBOARD_RECONCILE_INTERVAL_S": "1",
    "SWITCHBOARD_STALE_QUEUED_S": "3",
    "SWITCHBOARD_VISIBILITY_TIMEOUT_S": "10",
}


def zero_latency_config() -> SimulatorConfig:
    """The default simulated providers, answering at once with short completions."""
    config = default_config()
    fast = SimModel(latency_ms=0, jitter_ms=0, output_tokens=(4, 12))
    providers = {
        name: provider.model_copy(
            update={
                "models": {
                    model: fast.model_copy(
                        update={
                            "context_window": spec.context_window,
                            "max_output_tokens": spec.max_output_tokens,
                        }
                    )
                    for model, spec in provider.models.items()
                }
            }
        )
        for name, provider in config.providers.items()
    }
    return config.model_copy(update={"providers": providers})


@contextmanager
def bench_stack(
    data_dir: Path,
    simulator: SimulatorConfig,
    providers: Sequence[str],
    *,
    processes: int = 1,
    concurrency: int = 32,
    pool: str = "threads",
    quiet: bool = False,
    beat: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Iterator[tuple[Stack, str]]:
    """Embedded services, the simulator, worker pools for ``providers`` and the API."""
    config_path = data_dir / "simulator.json"
    data_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(simulator.model_dump_json())
    stack = Stack(
        StackOptions(
            data_dir=data_dir,
            api_port=0,
            flower_port=None,
            simulator_config=config_path,
            concurrency=concurrency,
            pool=pool,
            worker_processes=processes,
            events=False,
            extra_env=extra_env or {},
        )
    )
    try:
        with console.status("starting the stack", spinner="dots") if not quiet else _null():
            urls = stack.start_services()
            sim_url = stack.start_simulator()
            migrate(urls.database_url, simulator_url=sim_url)
            for provider in providers:
                stack.start_workers(provider)
            if beat:
                stack.start_beat()
            api_url = stack.start_api()
            stack.wait_for_workers()
        yield stack, api_url
    finally:
        stack.stop()


@contextmanager
def _null() -> Iterator[None]:
    yield
