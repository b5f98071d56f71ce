"""What every benchmark needs: a stack on the embedded default, and simulator configs."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from app.cli.client import ApiClient
from app.cli.stack import Stack, StackOptions
from app.db.migrate import migrate
from app.simulator.config import SimModel, SimulatorConfig, default_config
from app.simulator.control import with_models, with_provider

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


@contextmanager
def rate_limited_stack(
    provider: str,
    limits: dict[str, float],
    *,
    latency_ms: float,
    jitter_ms: float,
    limit_scope: str = "key",
    keys: int = 1,
    quiet: bool = False,
) -> Iterator[tuple[Stack, ApiClient]]:
    """A stack whose simulated ``provider`` enforces ``limits`` and whose registry knows them.

    With ``keys`` > 1 the provider gets that many stored keys, each with the same limits.
    """

    def paced(model: SimModel) -> SimModel:
        return model.model_copy(update={"latency_ms": latency_ms, "jitter_ms": jitter_ms})

    config = with_models(default_config(), provider, paced)
    simulator = with_provider(config, provider, limit_scope=limit_scope, **limits)
    data_dir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    try:
        with (
            bench_stack(data_dir, simulator, [provider], quiet=quiet) as (stack, api_url),
            ApiClient(api_url, timeout=600, api_key=stack.admin_key) as client,
        ):
            client.update_provider(provider, dict(limits))
            for i in range(keys if keys > 1 else 0):
                client.add_key(provider, f"bench-{i}", f"sk-bench-key-{i:04d}-abcdefghij")
            stack.restart_workers(provider)  # a fresh registry and key ring, no stale caches
            yield stack, client
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
