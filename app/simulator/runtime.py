"""Configured providers and models, ready to serve: the lookups the hot path needs."""

from __future__ import annotations

import random
from dataclasses import dataclass

from app.simulator.config import SimModel, SimProvider
from app.simulator.faults import Fault, SimError
from app.simulator.formats import FORMATS, WireFormat
from app.simulator.limiter import ProviderLimiter

# Injected faults in precedence order (the first that fires wins); every rate is drawn.
INJECTIONS = (
    "timeout",
    "server_error",
    "unavailable",
    "overloaded",
    "rate_limit",
    "malformed",
    "content_filter",
    "stream_error",
    "stream_stall",
)


@dataclass(frozen=True, slots=True)
class ModelRuntime:
    """A model's settings with its non-zero injection rates precomputed."""

    spec: SimModel
    injections: tuple[tuple[str, float], ...]

    @classmethod
    def of(cls, spec: SimModel) -> ModelRuntime:
        rates = tuple((name, getattr(spec.errors, name)) for name in INJECTIONS)
        return cls(spec, tuple((name, rate) for name, rate in rates if rate > 0))

    def draw(self, rng: random.Random, *, filters_content: bool) -> str | None:
        """The injection this request gets: one draw per non-zero rate, first hit wins."""
        if not self.injections:
            return None
        fired = [name for name, rate in self.injections if rng.random() < rate]
        if not filters_content and "content_filter" in fired:
            fired.remove("content_filter")
        return fired[0] if fired else None


class ProviderRuntime:
    """A configured provider: its wire format, accepted keys, limiter and models."""

    def __init__(self, name: str, spec: SimProvider) -> None:
        self.name = name
        self.spec = spec
        self.format: WireFormat = FORMATS[spec.format]
        self.limiter = ProviderLimiter.for_provider(spec)
        self.keys = None if spec.keys is None else frozenset(spec.keys)
        self._models = {name: ModelRuntime.of(model) for name, model in spec.models.items()}
        default = spec.default_model
        self._default = None if default is None else ModelRuntime.of(default)

    def accepts(self, key: str | None) -> bool:
        return self.keys is None or key in self.keys

    def model(self, name: str) -> ModelRuntime:
        """The model serving ``name``, or a NOT_FOUND ``SimError``."""
        found = self._models.get(name, self._default)
        if found is None:
            raise SimError(Fault.NOT_FOUND, model=name)
        return found
