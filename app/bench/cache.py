"""``switchboard bench cache``: what the response cache saves on a batch with repeated prompts.

A batch of ``lines`` deterministic chat requests (``temperature: 0``) over ``distinct``
prompts, repeats shuffled among first occurrences, runs against the simulator; then the same
batch again; last, the same batch with ``cache: {mode: off}`` (what it costs without).
Reported per batch: the provider calls it made, its hits, misses and hit rate, what it paid
and what its hits saved (``GET /v1/stats``, exact decimals), the share of the uncached cost
saved, and how long it took to be accepted and to finish (the second is answered whole from
the cache as it is inserted).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.bench.common import bench_stack
from app.cli.client import ApiClient
from app.cli.stack import Stack
from app.ledger.cost import format_usd
from app.simulator.config import default_config
from app.simulator.control import SimulatorControl

PROVIDER, MODEL = "sim-openai", "sim-gpt-mini"


def requests(
    lines: int, distinct: int, seed: int = 7, *, cache: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    prompts = [
        f"Summarise section {n} of the operations manual in two lines." for n in range(distinct)
    ]
    order = [i % distinct for i in range(lines)]
    random.Random(seed).shuffle(order)
    return [
        {
            "custom_id": f"r{i}",
            "model": MODEL,
            "messages": [{"role": "user", "content": prompts[p]}],
            "max_tokens": 64,
            "temperature": 0,
            **({"cache": cache} if cache is not None else {}),
        }
        for i, p in enumerate(order)
    ]


def run_cache(*, lines: int, distinct: int, quiet: bool) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    try:
        with bench_stack(data_dir, default_config(), [PROVIDER], beat=True, quiet=quiet) as (
            stack,
            api_url,
        ):
            runs = _run(stack, api_url, lines, distinct, quiet)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    first, second, uncached = runs
    return {
        "benchmark": "cache",
        "lines": lines,
        "distinct_prompts": distinct,
        "first_batch": first,
        "second_batch": second,
        "uncached_batch": uncached,
    }


def _run(
    stack: Stack, api_url: str, lines: int, distinct: int, quiet: bool
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The batch, the same batch again, and the batch with the cache off: what each cost,
    saved and called."""
    assert stack.simulator_url is not None
    control = SimulatorControl(stack.simulator_url)
    cached = {"requests": requests(lines, distinct), "priority": "normal"}
    uncached = {"requests": requests(lines, distinct, cache={"mode": "off"}), "priority": "normal"}
    results: list[dict[str, Any]] = []
    before: dict[str, Any] = {"hits": 0, "misses": 0, "cost_saved_usd": "0"}
    calls_before = 0
    try:
        with ApiClient(api_url, api_key=stack.admin_key) as client:
            for body in (cached, cached, uncached):
                started = time.monotonic()
                accepted = client.submit_batch(body)
                accept_s = time.monotonic() - started
                done = client.wait_for_batch(accepted["id"], show_progress=not quiet, poll_s=0.2)
                wall = time.monotonic() - started
                cache = client.stats({"period": "1h"})["overall"]["cache"]
                calls = _calls(control)
                results.append(_result(done, accepted, cache, before, calls - calls_before))
                results[-1].update(accept_s=round(accept_s, 3), wall_s=round(wall, 2))
                before, calls_before = cache, calls
    finally:
        control.close()
    return results[0], results[1], results[2]


def _result(
    batch: dict[str, Any],
    accepted: dict[str, Any],
    cache: dict[str, Any],
    before: dict[str, Any],
    calls: int,
) -> dict[str, Any]:
    hits = cache["hits"] - before["hits"]
    misses = cache["misses"] - before["misses"]
    paid = Decimal(batch["cost_usd"])
    saved = Decimal(cache["cost_saved_usd"]) - Decimal(before["cost_saved_usd"])
    uncached = paid + saved
    return {
        "status_when_accepted": accepted["status"],
        "completed": batch["request_counts"]["completed"],
        "provider_calls": calls,
        "hits": hits,
        "misses": misses,
        "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
        "cost_paid_usd": format_usd(paid),
        "cost_saved_usd": format_usd(saved),
        "saved_share": round(float(saved / uncached), 4) if uncached else None,
    }


def _calls(control: SimulatorControl) -> int:
    return int(control.stats()["providers"].get(PROVIDER, {}).get("requests", 0))
