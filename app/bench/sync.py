"""``switchboard bench sync``: what answering on the same request adds over the provider.

One simulated provider at a fixed latency (no jitter). The same chat request is sent, in
alternation so both sides see the same machine, straight to the simulator's OpenAI endpoint
and through the gateway's ``POST /v1/chat/completions`` (a high-priority job: submitted,
queued, claimed, admitted, called, recorded, answered). ``added_p50_ms`` is the difference of
the medians; the design's target is at most 5 ms.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from app.bench.common import bench_stack, zero_latency_config
from app.simulator.config import SimModel
from app.simulator.control import with_models

PROVIDER, MODEL = "sim-openai", "sim-gpt-mini"


def run_sync(*, requests: int, latency_ms: float, quiet: bool) -> dict[str, Any]:
    def paced(model: SimModel) -> SimModel:
        return model.model_copy(update={"latency_ms": latency_ms, "jitter_ms": 0})

    config = with_models(zero_latency_config(), PROVIDER, paced)
    data_dir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    try:
        with bench_stack(data_dir, config, [PROVIDER], quiet=quiet) as (stack, api_url):
            assert stack.simulator_url is not None
            direct_url = f"{stack.simulator_url}/{PROVIDER}/v1/chat/completions"
            gateway = httpx.Client(
                base_url=api_url,
                timeout=60,
                headers={"Authorization": f"Bearer {stack.admin_key}"},
            )
            direct = httpx.Client(timeout=60, headers={"Authorization": "Bearer sk-bench"})
            with gateway, direct:
                body = {"model": MODEL, "max_tokens": 8}
                for i in range(5):  # warm: connections, the registry snapshot, code paths
                    _one(gateway, "/v1/chat/completions", _body(body, f"warm {i}"))
                    _one(direct, direct_url, _body(body, f"warm {i}"))
                via_gateway, via_direct = [], []
                for i in range(requests):
                    via_direct.append(_one(direct, direct_url, _body(body, f"q {i}")))
                    via_gateway.append(_one(gateway, "/v1/chat/completions", _body(body, f"q {i}")))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    direct_p50, gateway_p50 = statistics.median(via_direct), statistics.median(via_gateway)
    return {
        "benchmark": "sync",
        "requests": requests,
        "provider_latency_ms": latency_ms,
        "direct_p50_ms": round(direct_p50, 2),
        "gateway_p50_ms": round(gateway_p50, 2),
        "added_p50_ms": round(gateway_p50 - direct_p50, 2),
        "direct_p95_ms": round(_percentile(via_direct, 0.95), 2),
        "gateway_p95_ms": round(_percentile(via_gateway, 0.95), 2),
    }


def _body(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {**body, "messages": [{"role": "user", "content": text}]}


def _one(client: httpx.Client, url: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = client.post(url, json=body)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))]
