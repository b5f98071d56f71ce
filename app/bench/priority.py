"""``switchboard bench priority``: interactive jobs jump ahead of a saturating batch backlog.

One simulated provider with an rpm limit (the registry knows it). A low-priority backlog much
larger than the limit allows is submitted; once it saturates the provider, high-priority jobs
arrive one at a time. Each one's wait is the time from its creation to the start of its first
provider call (Postgres clock on both ends).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from sqlalchemy import create_engine, pool, text

from app.bench.common import rate_limited_stack
from app.simulator.control import SimulatorControl

PROVIDER, MODEL = "sim-openai", "sim-gpt-mini"


def run_priority(
    *, backlog: int, high: int, rpm: int, burst_s: float, interval_s: float, quiet: bool
) -> dict[str, Any]:
    limits = {"rpm": rpm, "burst_s": burst_s}
    body = {"model": MODEL, "max_tokens": 16}
    with rate_limited_stack(PROVIDER, limits, latency_ms=200, jitter_ms=100, quiet=quiet) as (
        stack,
        client,
    ):
        assert stack.urls is not None
        assert stack.simulator_url is not None
        requests = [
            {**body, "custom_id": f"low-{i}", "messages": [{"role": "user", "content": f"{i}"}]}
            for i in range(backlog)
        ]
        batch = client.submit_batch({"priority": "low", "requests": requests})
        time.sleep(max(3.0, burst_s + 2.0))  # past the burst: the backlog now saturates
        high_ids = []
        for i in range(high):
            message = [{"role": "user", "content": f"Now {i}"}]
            high_ids.append(
                client.submit_job({**body, "priority": "high", "messages": message})["id"]
            )
            time.sleep(interval_s)
        backlog_left = client.batch(batch["id"])["request_counts"]
        engine = create_engine(stack.urls.database_url, poolclass=pool.NullPool)
        waits = sorted(_waits(engine, high_ids, timeout_s=60 + high * interval_s))
        engine.dispose()
        control = SimulatorControl(stack.simulator_url)
        stats = control.stats()["providers"][PROVIDER]
        control.close()
    return {
        "benchmark": "priority",
        "backlog_low": backlog,
        "high_jobs": high,
        "high_served": len(waits),
        "limits": limits,
        "high_wait_p50_s": round(statistics.median(waits), 3) if waits else None,
        "high_wait_p95_s": round(_percentile(waits, 0.95), 3) if waits else None,
        "high_wait_max_s": round(waits[-1], 3) if waits else None,
        "low_finished_while_measuring": backlog_left["completed"] + backlog_left["failed"],
        "upstream_429": int(stats["responses"].get("429", 0)),
    }


def _waits(engine: Any, job_ids: list[str], *, timeout_s: float) -> list[float]:
    query = text(
        """SELECT extract(epoch FROM min(a.started_at) - j.created_at)
        FROM jobs j JOIN attempts a ON a.job_id = j.id AND a.status <> 'skipped'
        WHERE j.id = ANY(:ids) GROUP BY j.id, j.created_at"""
    )
    deadline = time.monotonic() + timeout_s
    while True:
        with engine.connect() as conn:
            waits = [float(w) for (w,) in conn.execute(query, {"ids": job_ids})]
        if len(waits) == len(job_ids) or time.monotonic() > deadline:
            return waits
        time.sleep(0.5)


def _percentile(values: list[float], q: float) -> float:
    index = max(0, min(len(values) - 1, round(q * (len(values) - 1))))
    return values[index]
