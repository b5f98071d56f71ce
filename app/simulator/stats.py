"""What the simulator received and answered, per provider, model and key (``GET /_stats``).

Keys are never echoed: ``by_key`` is indexed by ``key_fingerprint`` (a short SHA-256 prefix).
Token counts are those of well-formed successful answers, i.e. what a provider would bill.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

ANONYMOUS = "anonymous"


def key_fingerprint(key: str | None) -> str:
    """A short, stable, non-reversible name for an API key (``"anonymous"`` for none)."""
    if not key:
        return ANONYMOUS
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:10]


@dataclass(slots=True)
class Outcome:
    """How one request ended, filled in as the engine goes and recorded once at the end."""

    status: int = 0
    key: str | None = None
    model: str | None = None
    rate_limited: bool = False  # refused by the limiter (not an injected 429)
    injected: str | None = None  # the ErrorRates field that fired
    prompt_tokens: int = 0  # of a well-formed successful answer
    completion_tokens: int = 0


@dataclass(slots=True)
class Counters:
    """Request and token counts for one slice of traffic."""

    requests: int = 0
    responses: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, outcome: Outcome) -> None:
        self.requests += 1
        status = str(outcome.status)
        self.responses[status] = self.responses.get(status, 0) + 1
        self.rate_limited += outcome.rate_limited
        if outcome.injected is not None:
            self.injected[outcome.injected] = self.injected.get(outcome.injected, 0) + 1
        self.prompt_tokens += outcome.prompt_tokens
        self.completion_tokens += outcome.completion_tokens

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "responses": dict(self.responses),
            "rate_limited": self.rate_limited,
            "injected": dict(self.injected),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


@dataclass(slots=True)
class ProviderStats:
    """Counters of one provider, with its concurrency and per-model / per-key breakdowns."""

    total: Counters = field(default_factory=Counters)
    in_flight: int = 0
    max_in_flight: int = 0
    by_model: dict[str, Counters] = field(default_factory=dict)
    by_key: dict[str, Counters] = field(default_factory=dict)

    def begin(self) -> None:
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight

    def end(self, outcome: Outcome) -> None:
        self.in_flight -= 1
        self.total.add(outcome)
        if outcome.model is not None:
            self._slice(self.by_model, outcome.model).add(outcome)
        self._slice(self.by_key, key_fingerprint(outcome.key)).add(outcome)

    @staticmethod
    def _slice(slices: dict[str, Counters], name: str) -> Counters:
        counters = slices.get(name)
        if counters is None:
            counters = slices[name] = Counters()
        return counters

    def to_json(self) -> dict[str, Any]:
        return {
            **self.total.to_json(),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "by_model": {name: c.to_json() for name, c in self.by_model.items()},
            "by_key": {name: c.to_json() for name, c in self.by_key.items()},
        }


@dataclass(slots=True)
class Stats:
    """All providers' counters since ``started_at`` (server start or the last ``/_reset``)."""

    started_at: float = field(default_factory=time.time)
    providers: dict[str, ProviderStats] = field(default_factory=dict)

    def provider(self, name: str) -> ProviderStats:
        found = self.providers.get(name)
        if found is None:
            found = self.providers[name] = ProviderStats()
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "providers": {name: p.to_json() for name, p in self.providers.items()},
        }
