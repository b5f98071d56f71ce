"""Choosing a model for a request: a pure function over the registry and live performance.

``select(registry, performance, SelectionRequest(...), usable=...) -> Selection``

:class:`SelectionRequest` fields:

- ``strategy``: ``cost`` (cheapest estimated cost of this request), ``performance`` (lowest
  expected latency), ``reliability`` (highest expected success rate), ``quality`` (highest
  catalog quality score) or ``balanced`` (weighted sum of the four, each normalised to 0..1
  across the candidates; ``weights`` overrides the default equal weights, keys
  ``cost``/``performance``/``reliability``/``quality``).
- ``input_tokens``: the estimated prompt tokens (``app.ratelimit.estimate``).
- ``max_tokens``: the request's output cap, if any. The context filter needs
  ``input_tokens + max_tokens`` to fit (or ``context_tokens`` when given: an embedding
  request's longest input); the cost estimate assumes ``max_tokens`` output tokens, or
  :data:`TYPICAL_OUTPUT_TOKENS` when it is unset.
- ``capabilities``: required capability names as the catalog spells them (``chat``,
  ``completion``, ``embeddings``, ``tools``, ``vision``, ``json_mode``, ``audio``,
  ``reasoning``); ``function_calling`` is accepted for ``tools``.
- ``max_cost_usd``: drop models whose estimated cost is above this.
- ``prefer_models`` / ``prefer_providers``: qualifying models named in ``prefer_models`` rank
  first, then those of ``prefer_providers``, then the rest; the strategy orders each group.
  A deprecated model is only eligible if named in ``prefer_models`` or ``candidates``.
- ``exclude_models``: never these.
- ``candidates``: restrict to these models (a routing policy's list); ``None``: every model.
- ``traffic_weights``: A/B split among ``candidates``: the first model is drawn with these
  weights using ``rng``; the fallbacks follow by strategy.
- ``chain_length``: how many models the fallback chain holds at most.

``usable(model)`` is False for a model behind an open breaker (as ``first_usable`` in
``app.jobs.service``); such models are skipped. :class:`Selection` holds the chosen model, an
ordered fallback chain (other providers first), the estimated cost and latency and a one-line
reason. When nothing qualifies: ``InvalidInput`` code ``no_model_available`` naming the
filter that removed the last candidates.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal, get_args

from app.errors import InvalidInput
from app.registry.service import ModelInfo, Registry
from app.routing.performance import ModelPerformance, PerformanceTable

Strategy = Literal["cost", "performance", "reliability", "quality", "balanced"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
WEIGHT_KEYS = ("cost", "performance", "reliability", "quality")
TYPICAL_OUTPUT_TOKENS = 512
UNKNOWN_LATENCY_MS = 10_000.0  # no samples and no hint: rank it behind every known one
UNKNOWN_QUALITY = 50
CAPABILITY_ALIASES = {"function_calling": "tools"}
_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class SelectionRequest:
    """What a request needs from a model, and how to rank those that qualify (see above)."""

    strategy: Strategy
    input_tokens: int = 0
    max_tokens: int | None = None
    # What must fit the context window, when not the whole request (embeddings: the longest
    # input, since each input is embedded on its own).
    context_tokens: int | None = None
    capabilities: frozenset[str] = frozenset({"chat"})
    max_cost_usd: Decimal | None = None
    prefer_models: tuple[str, ...] = ()
    prefer_providers: tuple[str, ...] = ()
    exclude_models: tuple[str, ...] = ()
    weights: Mapping[str, float] | None = None
    candidates: tuple[str, ...] | None = None
    traffic_weights: Mapping[str, float] | None = None
    chain_length: int = 3


@dataclass(frozen=True, slots=True)
class Candidate:
    """A qualifying model with the estimates it is ranked by."""

    model: ModelInfo
    cost_usd: Decimal
    latency_ms: float
    latency_source: str
    success_rate: float
    quality: int
    performance: ModelPerformance


@dataclass(frozen=True, slots=True)
class Selection:
    """The chosen model, its fallbacks, and why."""

    model: ModelInfo
    chain: tuple[ModelInfo, ...]
    estimated_cost_usd: Decimal
    estimated_latency_ms: float | None
    strategy: Strategy
    reason: str
    ranked: tuple[Candidate, ...] = field(default=(), repr=False)

    def record(self) -> dict[str, Any]:
        """The routing record stored on the job (``jobs.routing``) and returned with it."""
        return {
            "strategy": self.strategy,
            "model": self.model.id,
            "chain": [m.id for m in self.chain],
            "estimated_cost_usd": str(self.estimated_cost_usd),
            "estimated_latency_ms": (
                None if self.estimated_latency_ms is None else round(self.estimated_latency_ms)
            ),
            "reason": self.reason,
        }


def estimate_cost(model: ModelInfo, input_tokens: int, max_tokens: int | None) -> Decimal:
    output = TYPICAL_OUTPUT_TOKENS if max_tokens is None else max_tokens
    return (model.input_per_mtok * input_tokens + model.output_per_mtok * output) / _MILLION


def select(
    registry: Registry,
    performance: PerformanceTable,
    request: SelectionRequest,
    *,
    usable: Callable[[ModelInfo], bool] | None = None,
    rng: random.Random | None = None,
) -> Selection:
    """Filter the registry's models by ``request``, rank the rest by its strategy, pick one."""
    if request.strategy not in STRATEGIES:
        raise InvalidInput(
            f"unknown strategy {request.strategy!r}; use one of {', '.join(STRATEGIES)}",
            param="strategy",
        )
    required = frozenset(CAPABILITY_ALIASES.get(c, c) for c in request.capabilities)
    named = set(request.prefer_models) | set(request.candidates or ())
    pool = _initial_pool(registry, request)
    needed = (
        request.input_tokens + (request.max_tokens or 0)
        if request.context_tokens is None
        else request.context_tokens
    )
    filters: list[tuple[str, Callable[[ModelInfo], bool]]] = [
        ("disabled", lambda m: m.enabled and registry.providers[m.provider].enabled),
        ("deprecated", lambda m: not m.deprecated or m.id in named),
        ("exclude_models", lambda m: m.id not in request.exclude_models),
        (
            f"capabilities ({', '.join(sorted(required))})",
            lambda m: required <= m.capabilities,
        ),
        (f"context window ≥ {needed} tokens", lambda m: m.context_window >= needed),
        (
            f"max_cost_usd {request.max_cost_usd}",
            lambda m: (
                request.max_cost_usd is None
                or estimate_cost(m, request.input_tokens, request.max_tokens)
                <= request.max_cost_usd
            ),
        ),
        ("circuit breaker open", lambda m: usable is None or usable(m)),
    ]
    for name, keep in filters:
        remaining = [m for m in pool if keep(m)]
        if not remaining:
            raise InvalidInput(
                f"no model qualifies: the {name} filter removed the last "
                f"{len(pool)} candidate{'s' if len(pool) != 1 else ''}",
                code="no_model_available",
                param="route",
            )
        pool = remaining

    candidates = [_estimate(m, performance, request) for m in pool]
    ranked = _rank(candidates, request)
    first = ranked[0]
    if request.traffic_weights:
        first = _draw(ranked, request.traffic_weights, rng or random.Random()) or first
        ranked = [first, *(c for c in ranked if c is not first)]
    chain = _chain(ranked, request.chain_length)
    return Selection(
        model=first.model,
        chain=tuple(c.model for c in chain),
        estimated_cost_usd=first.cost_usd,
        estimated_latency_ms=None if first.latency_source == "none" else first.latency_ms,
        strategy=request.strategy,
        reason=_reason(first, request, required, needed),
        ranked=tuple(ranked),
    )


def select_among(
    registry: Registry,
    performance: PerformanceTable,
    request: SelectionRequest,
    candidates: Sequence[str],
    *,
    traffic_weights: Mapping[str, float] | None = None,
    rng: random.Random | None = None,
    usable: Callable[[ModelInfo], bool] | None = None,
) -> Selection:
    """``select`` restricted to ``candidates`` (a policy's models), optionally split by
    ``traffic_weights`` (A/B: the first model is drawn by weight with ``rng``)."""
    narrowed = replace(
        request,
        candidates=tuple(candidates),
        traffic_weights=traffic_weights or request.traffic_weights,
    )
    return select(registry, performance, narrowed, usable=usable, rng=rng)


def _initial_pool(registry: Registry, request: SelectionRequest) -> list[ModelInfo]:
    if request.candidates is None:
        return list(registry.models.values())
    pool: list[ModelInfo] = []
    for name in request.candidates:
        found = registry.models.get(name)
        if found is None:
            raise InvalidInput(
                f"unknown model {name!r} among the candidates",
                code="unknown_model",
                param="candidates",
            )
        pool.append(found)
    return pool


def _estimate(
    model: ModelInfo, performance: PerformanceTable, request: SelectionRequest
) -> Candidate:
    perf = performance.of(model.id)
    latency = perf.expected_latency_ms
    return Candidate(
        model=model,
        cost_usd=estimate_cost(model, request.input_tokens, request.max_tokens),
        latency_ms=UNKNOWN_LATENCY_MS if latency is None else latency,
        latency_source=perf.latency_source,
        success_rate=perf.expected_success_rate,
        quality=UNKNOWN_QUALITY if perf.quality is None else perf.quality,
        performance=perf,
    )


def _rank(candidates: list[Candidate], request: SelectionRequest) -> list[Candidate]:
    """Preferred models first, then models of preferred providers, then the rest; within
    each group by the strategy, then by id (so equal scores always break the same way)."""
    scores = _balanced_scores(candidates, request.weights)

    def key(c: Candidate) -> tuple[Any, ...]:
        if c.model.id in request.prefer_models:
            preference = 0
        elif c.model.provider in request.prefer_providers:
            preference = 1
        else:
            preference = 2
        match request.strategy:
            case "cost":
                order: tuple[Any, ...] = (c.cost_usd, c.latency_ms)
            case "performance":
                order = (c.latency_ms, c.cost_usd)
            case "reliability":
                order = (-c.success_rate, c.latency_ms)
            case "quality":
                order = (-c.quality, c.cost_usd)
            case _:
                order = (-scores[c.model.id], c.cost_usd)
        return (preference, *order, c.model.id)

    return sorted(candidates, key=key)


def _balanced_scores(
    candidates: list[Candidate], weights: Mapping[str, float] | None
) -> dict[str, float]:
    """Σ weight × (0..1, higher is better) per metric; cost and latency on a log scale,
    since they span orders of magnitude across models."""
    chosen = dict.fromkeys(WEIGHT_KEYS, 1.0) | dict(weights or {})
    total = sum(max(w, 0.0) for w in chosen.values()) or 1.0
    metrics: dict[str, list[float]] = {
        "cost": [-math.log10(float(c.cost_usd) + 1e-9) for c in candidates],
        "performance": [-math.log10(c.latency_ms + 1.0) for c in candidates],
        "reliability": [c.success_rate for c in candidates],
        "quality": [float(c.quality) for c in candidates],
    }
    scores = {c.model.id: 0.0 for c in candidates}
    for name, values in metrics.items():
        low, high = min(values), max(values)
        weight = max(chosen.get(name, 0.0), 0.0) / total
        for c, value in zip(candidates, values, strict=True):
            norm = 1.0 if high == low else (value - low) / (high - low)
            scores[c.model.id] += weight * norm
    return scores


def _draw(
    ranked: list[Candidate], weights: Mapping[str, float], rng: random.Random
) -> Candidate | None:
    """One candidate drawn by traffic weight; None if no qualifying model has a weight."""
    weighted = [(c, weights.get(c.model.id, 0.0)) for c in ranked]
    weighted = [(c, w) for c, w in weighted if w > 0]
    if not weighted:
        return None
    point = rng.random() * sum(w for _, w in weighted)
    for c, w in weighted:
        point -= w
        if point < 0:
            return c
    return weighted[-1][0]


def _chain(ranked: list[Candidate], length: int) -> list[Candidate]:
    """The first model, then fallbacks on providers not yet in the chain, then the rest."""
    chain = [ranked[0]]
    providers = {ranked[0].model.provider}
    for c in ranked[1:]:
        if len(chain) >= length:
            break
        if c.model.provider not in providers:
            chain.append(c)
            providers.add(c.model.provider)
    for c in ranked[1:]:
        if len(chain) >= length:
            break
        if c not in chain:
            chain.append(c)
    return chain


def _reason(
    first: Candidate, request: SelectionRequest, required: frozenset[str], needed: int
) -> str:
    caps = "/".join(sorted(required)) or "any"
    context = f" with ≥ {_tokens(needed)} context" if needed >= 1000 else ""
    subject = f"{caps} model{context}"
    m = first.model.id
    match request.strategy:
        case "cost":
            why = f"cheapest {subject}: {m} at ${first.cost_usd:.6f}"
        case "performance":
            source = (
                f"p50 of {first.performance.succeeded} recent calls"
                if first.latency_source == "live"
                else "catalog hint"
            )
            why = f"fastest {subject}: {m} at ~{first.latency_ms:.0f} ms ({source})"
        case "reliability":
            why = f"most reliable {subject}: {m} at {first.success_rate:.1%} expected success"
        case "quality":
            why = f"highest-quality {subject}: {m} (quality {first.quality})"
        case _:
            cost, latency = f"${first.cost_usd:.6f}", f"~{first.latency_ms:.0f} ms"
            why = f"best balanced {subject}: {m} at {cost}, {latency}"
    if first.model.id in request.prefer_models or first.model.provider in request.prefer_providers:
        why += " (preferred)"
    if request.traffic_weights and first.model.id in request.traffic_weights:
        why += " (traffic split)"
    return why


def _tokens(n: int) -> str:
    return f"{n / 1000:.0f}k" if n >= 1000 else str(n)
