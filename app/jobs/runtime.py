"""What running a job needs: the worker process's shared resources, and one attempt's target."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from sqlalchemy import Engine

from app.jobs.admission import Admission
from app.jobs.delayed import DelayedJobs
from app.jobs.observer import JobObserver, Unobserved
from app.jobs.service import Dispatcher
from app.registry.keys import KeyRing, ProviderKey
from app.registry.service import ModelInfo, ProviderInfo, RegistryCache
from app.registry.snapshot import TimedSnapshot
from app.relay.publisher import StreamPublisher
from app.routing.breakers import CircuitBreakers, model_target, provider_target
from app.routing.decision import ChainEntry, RetryPolicy


class EndedJobs(Protocol):
    """Hears of every job the runner ended (the response cache settles its waiters)."""

    def job_ended(self, job_id: str, request: dict[str, Any]) -> None: ...


@dataclass
class Runtime:
    """Per-process resources the runner uses; built once per worker process."""

    engine: Engine
    registry: RegistryCache
    keys: TimedSnapshot[KeyRing]
    http: httpx.Client
    dispatcher: Dispatcher
    delayed: DelayedJobs
    admission: Admission
    breakers: CircuitBreakers | None = None
    relay: StreamPublisher | None = None  # None: no job streams, every call is a whole one
    disable_key: Callable[[ProviderKey, str], None] = lambda key, reason: None
    # Webhook events the outcome wrote to the outbox go out at once through this; if it
    # fails, the webhook sweep publishes them later (app/webhooks/outbox.py).
    publish_events: Callable[[tuple[str, ...]], None] = lambda event_ids: None
    observer: JobObserver = field(default_factory=Unobserved)  # e.g. the worker's metrics
    # Headers every call in a wire format carries (OpenRouter's attribution), by format.
    provider_headers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    cache: EndedJobs | None = None  # the response cache (app/cache/service.py)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    attempt_timeout_s: float = 60.0
    lease_margin_s: float = 30.0
    max_in_slot_wait_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    @property
    def lease_s(self) -> float:
        return self.attempt_timeout_s + self.lease_margin_s


@dataclass(frozen=True, slots=True)
class Target:
    """Where one attempt goes."""

    model: ModelInfo
    provider: ProviderInfo
    chain: list[ChainEntry]

    @property
    def breakers(self) -> tuple[str, str]:
        return provider_target(self.provider.name), model_target(self.model.id)
