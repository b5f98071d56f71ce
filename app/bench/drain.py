"""``switchboard bench drain``: how close to the limits a batch drains, without a single 429.

A simulated provider enforces rpm / tpm per API key (burst ``burst_s``); the registry is told
the same limits. N jobs go in as one batch. ``ideal_s`` is what the limits allow: per key,
the work beyond one full bucket, at the refill rate — for requests, and for the tokens the
ledger says were used — whichever is longer. ``ratio`` = wall / ideal; ``upstream_429`` is what
the provider answered 429 (it must be 0).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, pool, text

from app.bench.common import rate_limited_stack
from app.simulator.control import SimulatorControl

PROVIDER, MODEL = "sim-openai", "sim-gpt-mini"


def run_drain(
    *, jobs: int, keys: int, rpm: int, tpm: int, burst_s: float, priority: str, quiet: bool
) -> dict[str, Any]:
    limits = {"rpm": rpm, "tpm": tpm, "burst_s": burst_s}
    with rate_limited_stack(
        PROVIDER, limits, latency_ms=20, jitter_ms=10, keys=keys, quiet=quiet
    ) as (stack, client):
        assert stack.urls is not None
        assert stack.simulator_url is not None
        requests = [
            {
                "custom_id": f"d{i}",
                "model": MODEL,
                "max_tokens": 32,
                "messages": [{"role": "user", "content": f"Summarise item {i}."}],
            }
            for i in range(jobs)
        ]
        batch = client.submit_batch({"requests": requests, "priority": priority})
        final = client.wait_for_batch(batch["id"], show_progress=not quiet, poll_s=0.2)
        engine = create_engine(stack.urls.database_url, poolclass=pool.NullPool)
        with engine.connect() as conn:
            wall, tokens = conn.execute(
                text(
                    "SELECT extract(epoch FROM max(finished_at) - min(created_at)), "
                    "sum(input_tokens + output_tokens) FROM jobs WHERE batch_id = :b"
                ),
                {"b": batch["id"]},
            ).one()
        engine.dispose()
        control = SimulatorControl(stack.simulator_url)
        stats = control.stats()["providers"][PROVIDER]
        control.close()
    ideal = ideal_seconds(
        jobs, int(tokens or 0), keys=max(keys, 1), rpm=rpm, tpm=tpm, burst_s=burst_s
    )
    return {
        "benchmark": "drain",
        "jobs": jobs,
        "keys": max(keys, 1),
        "limits_per_key": limits,
        "priority": priority,
        "wall_s": round(float(wall), 2),
        "ideal_s": round(ideal, 2),
        "ratio": round(float(wall) / ideal, 3) if ideal > 0 else None,
        "upstream_429": int(stats["responses"].get("429", 0)),
        "succeeded": final["request_counts"]["completed"],
        "failed": final["request_counts"]["failed"],
    }


def ideal_seconds(
    jobs: int, tokens: int, *, keys: int, rpm: int, tpm: int, burst_s: float
) -> float:
    """The least time the limits allow for ``jobs`` requests using ``tokens`` over ``keys``."""

    def drain(demand: float, per_min: float) -> float:
        return max(0.0, demand - per_min * burst_s / 60.0) / (per_min / 60.0)

    return max(drain(jobs / keys, rpm), drain(tokens / keys, tpm))
