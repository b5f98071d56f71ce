"""Driving a running simulator through its admin endpoints (tests and benchmarks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from app.simulator.config import SimModel, SimProvider, SimulatorConfig


class SimulatorControl:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

    def configure(self, config: SimulatorConfig) -> None:
        self.http.put("/_config", content=config.model_dump_json()).raise_for_status()

    def reset(self) -> None:
        self.http.post("/_reset").raise_for_status()

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = self.http.get("/_stats").json()
        return data

    def close(self) -> None:
        self.http.close()


def with_provider(config: SimulatorConfig, name: str, **changes: Any) -> SimulatorConfig:
    """``config`` with provider ``name`` changed (e.g. ``down=True``, ``rpm=600``)."""
    provider = config.providers[name].model_copy(update=changes)
    return config.model_copy(update={"providers": {**config.providers, name: provider}})


def with_models(
    config: SimulatorConfig, name: str, change: Callable[[SimModel], SimModel]
) -> SimulatorConfig:
    """``config`` with every model of provider ``name`` passed through ``change``."""
    provider: SimProvider = config.providers[name]
    models = {model: change(spec) for model, spec in provider.models.items()}
    return with_provider(config, name, models=models)
