"""Models of the tests' own, so that every series they read is theirs alone."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from app.cli.stack import Stack
from tests.metrics.scrape import Scrape, scrape_all

Register = Callable[..., str]


@pytest.fixture
def register_model(api: httpx.Client, engine: Engine) -> Iterator[Register]:
    """Register a sim-openai model under a fresh id (``upstream`` may name one the simulator
    lacks); removed afterwards."""
    made: list[str] = []

    def register(prefix: str = "metrics", **changes: Any) -> str:
        model_id = f"{prefix}-{uuid.uuid4().hex[:10]}"
        body = {
            "id": model_id,
            "provider": "sim-openai",
            "upstream": "sim-gpt-mini",
            "capabilities": ["chat"],
            "context_window": 32000,
            "max_output_tokens": 2000,
            "input_per_mtok": "0.25",
            "output_per_mtok": "1.5",
            **changes,
        }
        created = api.post("/v1/models", json=body)
        assert created.status_code == 201, created.text
        made.append(model_id)
        return model_id

    yield register
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM models WHERE id = ANY(:ids)"), {"ids": made})


def worker_metrics(stack: Stack, provider: str) -> Scrape:
    """The metrics of every worker process of ``provider``'s pool, added up."""
    urls = [c.metrics_url for c in stack.workers[provider] if c.metrics_url]
    assert urls, f"no worker of {provider} serves metrics"
    return scrape_all(urls)


def chat(model: str | list[str], i: int, **extra: Any) -> dict[str, Any]:
    return {
        "custom_id": f"m-{i}",
        "model": model,
        "messages": [{"role": "user", "content": f"Count to {i}."}],
        "max_tokens": 16,
        **extra,
    }
