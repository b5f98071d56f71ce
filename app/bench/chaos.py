"""Breaking the system on purpose, and checking the ledger afterwards.

Each scenario runs a batch over two simulated providers (each request falling back to the
other) and, about a third of the way through, does one thing to the system — or has a
provider misbehave for the whole run. Then ``app.ledger.audit`` counts what was lost or
recorded twice. ``switchboard bench chaos`` runs them all as one run; the failure tests run
the same scenarios one at a time.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, pool

from app.bench.common import FAST_RECOVERY_ENV, bench_stack
from app.cli.client import ApiClient
from app.cli.stack import Stack
from app.errors import SwitchboardError
from app.ledger.audit import Audit, audit
from app.simulator.config import ErrorRates, SimModel, SimulatorConfig, default_config
from app.simulator.control import SimulatorControl, with_models, with_provider

PROVIDERS = ("sim-openai", "sim-anthropic")
CHAINS = (["sim-gpt-mini", "sim-claude-haiku"], ["sim-claude-haiku", "sim-gpt-mini"])
FLAKY = "sim-anthropic"


def chaos_config() -> SimulatorConfig:
    """Every simulated model slow enough (~250 ms) for a batch to be mid-flight for seconds."""

    def slow(model: SimModel) -> SimModel:
        return model.model_copy(update={"latency_ms": 250, "jitter_ms": 50})

    config = default_config()
    for name in PROVIDERS:
        config = with_models(config, name, slow)
    return config


def _misbehaving(errors: ErrorRates) -> Callable[[SimulatorConfig], SimulatorConfig]:
    def apply(config: SimulatorConfig) -> SimulatorConfig:
        return with_models(config, FLAKY, lambda m: m.model_copy(update={"errors": errors}))

    return apply


def kill_worker(stack: Stack) -> None:
    """SIGKILL a worker process mid-batch (its jobs in flight die with it); start another."""
    victim = stack.workers["sim-openai"].pop(0)
    os.killpg(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    stack.start_workers("sim-openai")


def restart_redis(stack: Stack) -> None:
    """Stop Redis and start it again: it keeps nothing, so every queue and lock is gone."""
    assert stack.embedded is not None, "restarting Redis needs the embedded one"
    stack.embedded.redis.stop()
    time.sleep(1.0)
    stack.embedded.redis.start()


def flush_redis(stack: Stack) -> None:
    """FLUSHALL: messages, unacked deliveries, delayed jobs, rate-limit buckets, breakers."""
    assert stack.urls is not None
    client = redis.Redis.from_url(stack.urls.redis_url)
    client.flushall()
    client.close()


def restart_postgres(stack: Stack) -> None:
    """Restart PostgreSQL (fast shutdown): every open connection breaks."""
    assert stack.embedded is not None, "restarting Postgres needs the embedded one"
    stack.embedded.postgres.restart()


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    what: str
    provider: Callable[[SimulatorConfig], SimulatorConfig] | None = None  # the whole run
    disrupt: Callable[[Stack], None] | None = None  # once, a third of the way through


SCENARIOS = (
    Scenario(
        "worker_sigkill",
        "SIGKILLed the sim-openai worker mid-batch, started another",
        disrupt=kill_worker,
    ),
    Scenario(
        "redis_restart",
        "stopped and restarted Redis mid-batch (it persists nothing)",
        disrupt=restart_redis,
    ),
    Scenario("redis_flush", "FLUSHALL on Redis mid-batch", disrupt=flush_redis),
    Scenario("postgres_restart", "restarted PostgreSQL mid-batch", disrupt=restart_postgres),
    Scenario(
        "provider_down",
        "sim-anthropic answered 503 to every request for the whole run",
        provider=lambda c: with_provider(c, FLAKY, down=True),
    ),
    Scenario(
        "garbage_bodies",
        "sim-anthropic answered 200 with truncated, non-JSON bodies",
        provider=_misbehaving(ErrorRates(malformed=1.0)),
    ),
    Scenario(
        "provider_hangs",
        "sim-anthropic held every request past the attempt timeout",
        provider=_misbehaving(ErrorRates(timeout=1.0, hang_s=120)),
    ),
)


@dataclass
class ScenarioResult:
    name: str
    what: str
    wall_s: float
    audit: Audit
    repeated_provider_calls: int  # successful provider answers beyond one per succeeded job

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "what": self.what,
            "wall_s": round(self.wall_s, 2),
            **self.audit.as_dict(),
            "repeated_provider_calls": self.repeated_provider_calls,
        }


def run_scenario(
    stack: Stack, api_url: str, scenario: Scenario, *, jobs: int, timeout_s: float = 180.0
) -> ScenarioResult:
    assert stack.simulator_url is not None
    assert stack.urls is not None
    simulator = SimulatorControl(stack.simulator_url)
    config = chaos_config()
    simulator.configure(scenario.provider(config) if scenario.provider else config)
    simulator.reset()
    requests = [
        {
            "custom_id": f"{scenario.name}-{i}",
            "model": CHAINS[i % 2],
            "max_tokens": 24,
            "messages": [{"role": "user", "content": f"Tell me about item {i}."}],
        }
        for i in range(jobs)
    ]
    started = time.monotonic()
    with ApiClient(api_url, api_key=stack.admin_key) as client:
        batch = client.submit_batch({"requests": requests, "priority": "normal"})
        if scenario.disrupt is not None:
            _wait_for(client, batch["id"], done=jobs // 3, timeout_s=timeout_s)
            scenario.disrupt(stack)
        _wait_for(client, batch["id"], done=jobs, timeout_s=timeout_s)
    wall = time.monotonic() - started
    engine = create_engine(stack.urls.database_url, poolclass=pool.NullPool)
    try:
        result = audit(engine, batch["job_ids"])
    finally:
        engine.dispose()
    stats = simulator.stats()["providers"]
    simulator.configure(default_config())
    simulator.close()
    answered = sum(
        p["responses"].get("200", 0) - p["injected"].get("malformed", 0) for p in stats.values()
    )
    return ScenarioResult(scenario.name, scenario.what, wall, result, answered - result.succeeded)


def _wait_for(client: ApiClient, batch_id: str, *, done: int, timeout_s: float) -> None:
    """Until ``done`` requests finished; the API may be briefly down while we break things."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            counts = client.batch(batch_id)["request_counts"]
            if counts["completed"] + counts["failed"] >= done:
                return
        except SwitchboardError:
            pass
        time.sleep(0.2)


def run_chaos(*, jobs: int, quiet: bool) -> dict[str, Any]:
    """Every scenario, one after another, on one stack; totals and one line per scenario."""
    data_dir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    try:
        with bench_stack(
            data_dir,
            chaos_config(),
            PROVIDERS,
            quiet=quiet,
            concurrency=8,
            beat=True,
            extra_env=FAST_RECOVERY_ENV,
        ) as (stack, api_url):
            results = [run_scenario(stack, api_url, s, jobs=jobs) for s in SCENARIOS]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "benchmark": "chaos",
        "jobs_per_scenario": jobs,
        "lost": sum(r.audit.lost for r in results),
        "duplicated": sum(r.audit.duplicated for r in results),
        "unclassified": sum(r.audit.unclassified for r in results),
        "succeeded": sum(r.audit.succeeded for r in results),
        "failed": sum(r.audit.failed for r in results),
        "repeated_provider_calls": sum(r.repeated_provider_calls for r in results),
        "recovery_settings": FAST_RECOVERY_ENV,
        "scenarios": [r.as_dict() for r in results],
    }
