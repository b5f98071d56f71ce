"""``switchboard bench throughput``: the pipeline's speed on the embedded default.

``jobs_per_s``: N jobs submitted as one batch to two zero-latency simulated providers, from
just before the submission until the last job's result is recorded in the ledger (the newest
``finished_at``, read from Postgres). ``batch_accept_s``: the wall time of ``POST /v1/batches``
for a 10,000-job batch (validated, inserted, committed, published), sent to a provider with no
workers running so that nothing else competes with it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from app.bench.common import bench_stack, zero_latency_config
from app.cli.client import ApiClient
from app.db.engine import make_engine

PROVIDERS = ("sim-openai", "sim-anthropic")
MODELS = ("sim-gpt-mini", "sim-claude-haiku")
IDLE_MODEL = "sim-gemini-flash"  # no workers: its queue only fills


def requests(count: int, models: tuple[str, ...], tag: str) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"{tag}-{i}",
            "model": models[i % len(models)],
            "messages": [{"role": "user", "content": f"Say hello to request number {i}."}],
            "max_tokens": 16,
        }
        for i in range(count)
    ]


def run_throughput(
    *, jobs: int, accept_jobs: int, processes: int, concurrency: int, pool: str, quiet: bool
) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    try:
        with bench_stack(
            data_dir,
            zero_latency_config(),
            PROVIDERS,
            processes=processes,
            concurrency=concurrency,
            pool=pool,
            quiet=quiet,
        ) as (stack, api_url):
            assert stack.urls is not None
            engine = make_engine(stack.urls.database_url, pool_size=1)
            with ApiClient(api_url, timeout=600, api_key=stack.admin_key) as client:
                # Warm up: connections, registry caches, imports on every worker.
                warm = client.submit_batch({"requests": requests(200, MODELS, "warm")})
                client.wait_for_batch(warm["id"], show_progress=False, poll_s=0.05)

                started = time.time()
                batch = client.submit_batch({"requests": requests(jobs, MODELS, "run")})
                submitted = time.time()
                final = client.wait_for_batch(batch["id"], show_progress=not quiet, poll_s=0.05)
                with engine.connect() as conn:
                    last = conn.execute(
                        text(
                            "SELECT extract(epoch FROM max(finished_at)) FROM jobs "
                            "WHERE batch_id = :b"
                        ),
                        {"b": batch["id"]},
                    ).scalar_one()
                wall = float(last) - started

                t0 = time.perf_counter()
                client.submit_batch({"requests": requests(accept_jobs, (IDLE_MODEL,), "accept")})
                accept_s = time.perf_counter() - t0
            engine.dispose()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    counts = final["request_counts"]
    return {
        "benchmark": "throughput",
        "jobs": jobs,
        "jobs_per_s": round(jobs / wall, 1),
        "wall_s": round(wall, 3),
        "submit_s": round(submitted - started, 3),
        "succeeded": counts["completed"],
        "failed": counts["failed"],
        "batch_accept_s": round(accept_s, 3),
        "accept_jobs": accept_jobs,
        "worker_processes": processes * len(PROVIDERS),
        "concurrency": concurrency,
        "pool": pool,
        "cpus": os.cpu_count(),
    }
