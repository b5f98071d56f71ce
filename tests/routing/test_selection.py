"""Model selection on the shipped catalog, with synthetic live performance (pure: no I/O)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.errors import InvalidInput
from app.registry.catalog import load_catalog
from app.registry.service import ModelInfo, ProviderInfo, Registry
from app.routing.performance import (
    ModelPerformance,
    PerformanceTable,
    catalog_priors,
    empty_table,
)
from app.routing.selection import SelectionRequest, select, select_among

CATALOG = load_catalog()
PRIORS = catalog_priors(CATALOG)


def shipped_registry(*, simulator: bool) -> Registry:
    """The catalog as a registry; without the simulator, as a real deployment serves it."""
    providers = [
        ProviderInfo(
            name=p.name,
            display_name=p.display_name,
            wire_format=p.wire_format,
            base_url=p.base_url,
            api_key_env=p.api_key_env,
            rpm=p.rpm,
            tpm=p.tpm,
            itpm=p.itpm,
            otpm=p.otpm,
            burst_s=p.burst_s,
            simulated=p.simulated,
            enabled=simulator or not p.simulated,
        )
        for p in CATALOG.providers.values()
    ]
    models = [
        ModelInfo(
            id=m.id,
            provider=m.provider,
            upstream=m.upstream,
            context_window=m.context_window,
            max_output_tokens=m.max_output_tokens,
            input_per_mtok=m.input_per_mtok,
            output_per_mtok=m.output_per_mtok,
            cached_input_per_mtok=m.cached_input_per_mtok,
            capabilities=m.capabilities,
            aliases=m.aliases,
            rpm=m.rpm,
            tpm=m.tpm,
            deprecated=m.deprecated,
            enabled=True,
        )
        for m in CATALOG.models.values()
    ]
    return Registry(providers, models)


REGISTRY = shipped_registry(simulator=False)
WITH_SIMULATOR = shipped_registry(simulator=True)


def live(model_id: str, *, samples: int, succeeded: int, p50: float) -> ModelPerformance:
    return ModelPerformance(
        model_id=model_id,
        samples=samples,
        succeeded=succeeded,
        p50_ms=p50,
        p95_ms=p50 * 2,
        p99_ms=p50 * 3,
        errors={"server_error": samples - succeeded} if samples > succeeded else {},
        prior=PRIORS.get(model_id) or PRIORS["sim-gpt-mini"],
    )


def table(*records: ModelPerformance) -> PerformanceTable:
    return PerformanceTable(
        window_s=900,
        computed_at=datetime.now(UTC),
        models={r.model_id: r for r in records},
        priors=PRIORS,
    )


NO_DATA = empty_table(PRIORS)


def choose(
    strategy: str, perf: PerformanceTable = NO_DATA, registry: Registry = REGISTRY, **fields: object
) -> str:
    request = SelectionRequest(strategy=strategy, input_tokens=500, max_tokens=200, **fields)  # type: ignore[arg-type]
    return select(registry, perf, request).model.id


def test_each_strategy_chooses_a_different_model() -> None:
    choices = {s: choose(s) for s in ("cost", "performance", "quality", "balanced")}
    assert len(set(choices.values())) == 4, choices
    # cost: a free local model; quality: the catalog's top score; performance: the fastest hint.
    assert REGISTRY.models[choices["cost"]].input_per_mtok == 0
    assert choices["quality"] == "gemini-2.5-pro"
    assert choices["performance"] == "groq/llama-3.1-8b-instant"


def test_cost_picks_the_cheapest_estimate_and_says_so() -> None:
    request = SelectionRequest(
        strategy="cost", input_tokens=9000, max_tokens=100, exclude_models=_free_models()
    )
    chosen = select(REGISTRY, NO_DATA, request)
    eligible = [
        m
        for m in REGISTRY.models.values()
        if m.enabled and "chat" in m.capabilities and not m.deprecated
        if m.id not in _free_models()
    ]
    cheapest = min(eligible, key=lambda m: m.input_per_mtok * 9000 + m.output_per_mtok * 100)
    assert chosen.model.id == cheapest.id == "groq/llama-3.1-8b-instant"
    assert chosen.estimated_cost_usd == (
        cheapest.input_per_mtok * 9000 + cheapest.output_per_mtok * 100
    ) / Decimal(1_000_000)
    assert chosen.reason.startswith("cheapest chat model with ≥ 9k context: groq/llama-3.1-8b")


def _free_models() -> tuple[str, ...]:
    return tuple(m.id for m in REGISTRY.models.values() if m.input_per_mtok == 0)


def test_performance_follows_live_latency_over_the_catalog_hint() -> None:
    fast = "groq/llama-3.1-8b-instant"
    assert choose("performance") == fast
    slow = table(live(fast, samples=50, succeeded=50, p50=4000))
    assert choose("performance", slow) == "groq/llama-3.3-70b-versatile"
    # Too few samples: the hint still stands.
    few = table(live(fast, samples=3, succeeded=3, p50=4000))
    assert choose("performance", few) == fast


def test_reliability_prefers_the_model_with_the_best_record() -> None:
    record = table(
        live("groq/llama-3.1-8b-instant", samples=200, succeeded=120, p50=30),
        live("claude-3-5-haiku", samples=500, succeeded=500, p50=900),
    )
    assert choose("reliability", record) == "claude-3-5-haiku"
    flaky = table(live("claude-3-5-haiku", samples=500, succeeded=300, p50=900))
    assert choose("reliability", flaky) != "claude-3-5-haiku"


def test_a_vision_requirement_changes_the_cheapest_choice() -> None:
    plain = choose("cost")
    with_vision = choose("cost", capabilities=frozenset({"chat", "vision"}))
    assert plain != with_vision
    assert "vision" in REGISTRY.models[with_vision].capabilities
    assert "vision" not in REGISTRY.models[plain].capabilities


def test_a_long_prompt_only_goes_to_models_whose_window_holds_it() -> None:
    request = SelectionRequest(strategy="cost", input_tokens=300_000, max_tokens=1000)
    chosen = select(REGISTRY, NO_DATA, request)
    assert all(m.context_window >= 301_000 for m in chosen.chain)
    assert chosen.model.id != choose("cost")
    assert "≥ 301k context" in chosen.reason


def test_a_cost_cap_moves_quality_to_a_cheaper_model() -> None:
    top = choose("quality")
    capped = choose("quality", max_cost_usd=Decimal("0.0005"))
    assert capped != top
    model = REGISTRY.models[capped]
    assert (model.input_per_mtok * 500 + model.output_per_mtok * 200) / 1_000_000 <= Decimal(
        "0.0005"
    )


def test_no_qualifying_model_names_the_filter_that_removed_the_last_ones() -> None:
    with pytest.raises(InvalidInput) as caught:
        choose("cost", capabilities=frozenset({"embeddings", "vision"}))
    assert caught.value.code == "no_model_available"
    assert "capabilities" in caught.value.message
    with pytest.raises(InvalidInput) as caught:
        choose("cost", max_cost_usd=Decimal("0"), exclude_models=_free_models())
    assert "max_cost_usd" in caught.value.message


def test_models_behind_an_open_breaker_are_skipped() -> None:
    request = SelectionRequest(strategy="quality", input_tokens=500, max_tokens=200)
    chosen = select(REGISTRY, NO_DATA, request, usable=lambda m: m.provider != "gemini")
    assert chosen.model.provider != "gemini"
    assert all(m.provider != "gemini" for m in chosen.chain)


def test_deprecated_models_are_skipped_unless_named() -> None:
    assert "claude-3-opus" not in {choose("quality"), choose("cost")}
    assert choose("quality", prefer_models=("claude-3-opus",)) == "claude-3-opus"


def test_preferred_models_rank_first_and_the_chain_spans_providers() -> None:
    request = SelectionRequest(
        strategy="performance",
        prefer_models=("sim-claude-sonnet", "sim-gpt-large"),
        chain_length=3,
    )
    chosen = select(WITH_SIMULATOR, NO_DATA, request)
    assert chosen.model.id == "sim-gpt-large"
    # Preferred models first, the faster of them leading; then another provider's model.
    assert [m.id for m in chosen.chain][:2] == ["sim-gpt-large", "sim-claude-sonnet"]
    assert len({m.provider for m in chosen.chain}) == 3
    assert "(preferred)" in chosen.reason


def test_balanced_weights_can_reduce_it_to_a_single_strategy() -> None:
    only_quality = {"cost": 0.0, "performance": 0.0, "reliability": 0.0, "quality": 1.0}
    assert choose("balanced", weights=only_quality) == choose("quality")


def test_traffic_weights_split_the_first_choice_among_candidates() -> None:
    request = SelectionRequest(strategy="cost", input_tokens=100, max_tokens=50)
    rng = random.Random(7)
    picks = Counter(
        select_among(
            WITH_SIMULATOR,
            NO_DATA,
            request,
            ["sim-gpt-mini", "sim-claude-haiku"],
            traffic_weights={"sim-gpt-mini": 1, "sim-claude-haiku": 3},
            rng=rng,
        ).model.id
        for _ in range(2000)
    )
    assert 0.70 < picks["sim-claude-haiku"] / 2000 < 0.80
    assert set(picks) == {"sim-gpt-mini", "sim-claude-haiku"}
