"""``switchboard bench outage``: a primary provider that is down (or failing 30%).

Jobs with the chain [sim-claude-haiku (sim-anthropic), sim-gpt-mini (sim-openai)] arrive at a
steady rate, first with both providers healthy (the baseline), then with sim-anthropic down —
or answering 500 to 30% of requests. Reported: the success rate, the latency added to each
job (end to end, percentiles against the baseline's), provider calls per job, and how many
calls went to the dead provider after its breaker opened (none is the target).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import create_engine, pool, text

from app.bench.common import bench_stack
from app.cli.client import ApiClient
from app.simulator.config import ErrorRates, SimModel, SimulatorConfig, default_config
from app.simulator.control import SimulatorControl, with_models, with_provider

PRIMARY, FALLBACK = "sim-anthropic", "sim-openai"
CHAIN = ["sim-claude-haiku", "sim-gpt-mini"]


def _healthy() -> SimulatorConfig:
    def steady(model: SimModel) -> SimModel:
        return model.model_copy(update={"latency_ms": 50, "jitter_ms": 10})

    return with_models(with_models(default_config(), PRIMARY, steady), FALLBACK, steady)


def _broken(mode: Literal["down", "flaky"]) -> SimulatorConfig:
    if mode == "down":
        return with_provider(_healthy(), PRIMARY, down=True)
    failing = ErrorRates(server_error=0.3)
    return with_models(_healthy(), PRIMARY, lambda m: m.model_copy(update={"errors": failing}))


def run_outage(
    *, jobs: int, mode: Literal["down", "flaky"], rate_per_s: float, quiet: bool
) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    try:
        with bench_stack(data_dir, _healthy(), [PRIMARY, FALLBACK], quiet=quiet) as (stack, api):
            assert stack.urls is not None
            assert stack.simulator_url is not None
            control = SimulatorControl(stack.simulator_url)
            engine = create_engine(stack.urls.database_url, poolclass=pool.NullPool)
            with ApiClient(api, timeout=120, api_key=stack.admin_key) as client:
                baseline = _stream(client, engine, jobs, rate_per_s)
                control.configure(_broken(mode))
                control.reset()
                outage_started = time.time()
                during = _stream(client, engine, jobs, rate_per_s)
                opened = [
                    b["opened_at"]
                    for b in client.breakers()
                    if b["target"] in (f"provider:{PRIMARY}", f"model:{CHAIN[0]}")
                    and b["opened_at"] is not None
                ]
            calls = _calls(engine, during["ids"], opened_at=min(opened) if opened else None)
            engine.dispose()
            control.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    base, hit = sorted(baseline["latencies"]), sorted(during["latencies"])
    return {
        "benchmark": "outage",
        "mode": mode,
        "jobs": jobs,
        "success_rate": round(during["succeeded"] / jobs, 4),
        "added_latency_p50_s": round(statistics.median(hit) - statistics.median(base), 3),
        "added_latency_p95_s": round(_p95(hit) - _p95(base), 3),
        "attempts_per_job": round(calls["calls"] / jobs, 3),
        "primary_calls": calls["primary"],
        "primary_calls_after_breaker_open": calls["after_open"],
        "breaker_opened_after_s": round(min(opened) - outage_started, 2) if opened else None,
    }


def _stream(client: ApiClient, engine: Any, jobs: int, rate_per_s: float) -> dict[str, Any]:
    """Submit ``jobs`` single jobs at a steady rate; wait; their end-to-end latencies."""
    ids = []
    for i in range(jobs):
        body = {
            "model": CHAIN,
            "max_tokens": 16,
            "priority": "normal",
            "messages": [{"role": "user", "content": f"Question {i}"}],
        }
        ids.append(client.submit_job(body)["id"])
        time.sleep(1.0 / rate_per_s)
    query = text(
        "SELECT status, extract(epoch FROM finished_at - created_at) FROM jobs WHERE id = ANY(:ids)"
    )
    deadline = time.monotonic() + 120
    while True:
        with engine.connect() as conn:
            rows = conn.execute(query, {"ids": ids}).all()
        done = [r for r in rows if r[0] in ("succeeded", "failed")]
        if len(done) == len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    return {
        "ids": ids,
        "succeeded": sum(1 for status, _ in done if status == "succeeded"),
        "latencies": [float(latency) for status, latency in done if status == "succeeded"],
    }


def _calls(engine: Any, ids: list[str], *, opened_at: float | None) -> dict[str, int]:
    query = text(
        """SELECT count(*) AS calls,
            count(*) FILTER (WHERE provider = :primary) AS primary_calls,
            count(*) FILTER (WHERE provider = :primary
                             AND extract(epoch FROM started_at) > :opened_at) AS after_open
        FROM attempts WHERE job_id = ANY(:ids) AND status <> 'skipped'"""
    )
    params = {"ids": ids, "primary": PRIMARY, "opened_at": opened_at or 1e12}
    with engine.connect() as conn:
        row = conn.execute(query, params).one()
    return {"calls": row.calls, "primary": row.primary_calls, "after_open": row.after_open}


def _p95(values: list[float]) -> float:
    return values[max(0, min(len(values) - 1, round(0.95 * (len(values) - 1))))]
