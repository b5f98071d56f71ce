"""Turning a submitted request into its fallback chain: the named models, or a selection.

Job and batch submission call :func:`plan_chain` once per request; a request that names its
models gets them resolved as before, a ``strategy`` request gets :func:`select`'s chain and a
routing record (stored in ``jobs.routing``) saying what was chosen and why.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from app.constants import DEFAULT_TENANT
from app.errors import InvalidInput, NotFound
from app.jobs.schemas import ChatParams, RoutedRequest
from app.policies.rules import Policy, resolve
from app.ratelimit.estimate import estimate_input_tokens, estimate_prompt_tokens
from app.registry.service import ModelInfo, Registry
from app.routing.capabilities import needs_of, shortfall
from app.routing.performance import PerformanceTable, empty_table
from app.routing.selection import Selection, SelectionRequest, Strategy, select, select_among

PerformanceSource = Callable[[], PerformanceTable]


@dataclass(frozen=True, slots=True)
class Plan:
    chain: list[ModelInfo]
    routing: dict[str, Any] | None


def selection_request(
    params: RoutedRequest, strategy: Strategy | None = None, registry: Registry | None = None
) -> SelectionRequest:
    """What a strategy request needs: its token estimate, its capabilities, its filters.

    Capabilities the body itself implies (tools, a JSON response format, image parts) are
    required too (``app.routing.capabilities``), so the gateway never routes a request to a
    model that cannot serve it; with ``registry``, models whose wire format cannot take the
    request's inputs are excluded as well.
    """
    strategy = strategy or params.strategy
    assert strategy is not None
    body = params.to_request()
    route = params.route
    needs = needs_of(params, frozenset(route.capabilities or []) if route else frozenset())
    filters = SelectionRequest(
        strategy=strategy,
        max_cost_usd=route.max_cost_usd if route else None,
        prefer_models=tuple(route.prefer_models) if route else (),
        prefer_providers=tuple(route.prefer_providers) if route else (),
        exclude_models=tuple(route.exclude_models) if route else (),
        weights={str(k): v for k, v in route.weights.items()} if route and route.weights else None,
        capabilities=needs.capabilities,
    )
    if registry is not None and needs.image_urls:  # the only need a wire format can refuse
        refused = tuple(
            model.id
            for model in registry.models.values()
            if needs.capabilities <= model.capabilities and shortfall(needs, model, registry)
        )
        filters = replace(filters, exclude_models=filters.exclude_models + refused)
    if not isinstance(params, ChatParams):  # embeddings: each input must fit the window
        inputs = body["input"]
        return replace(
            filters,
            input_tokens=estimate_input_tokens(inputs),
            max_tokens=0,
            context_tokens=max(estimate_input_tokens([text]) for text in inputs),
        )
    return replace(
        filters,
        input_tokens=estimate_prompt_tokens(body.get("messages", []), params.tools),
        max_tokens=params.max_tokens,
    )


def route_request(
    registry: Registry,
    params: RoutedRequest,
    *,
    performance: PerformanceSource | None = None,
    usable: Callable[[ModelInfo], bool] | None = None,
) -> Selection:
    """The selection for a ``strategy`` request (also ``POST /v1/route``'s dry run)."""
    table = performance() if performance is not None else empty_table()
    return select(registry, table, selection_request(params, registry=registry), usable=usable)


@dataclass(frozen=True, slots=True)
class PolicySource:
    """What a ``policy`` request is resolved against: the policies, and whose request it is."""

    policies: Callable[[], Sequence[Policy]]
    tenant_id: str


def plan_chain(
    registry: Registry,
    params: RoutedRequest,
    *,
    performance: PerformanceSource | None = None,
    usable: Callable[[ModelInfo], bool] | None = None,
    param: str = "model",
    policies: PolicySource | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Plan:
    """The request's chain: its named models (checked), the chosen model and fallbacks, or
    what its routing policy says."""
    if params.policy is not None:
        return _policy_plan(registry, params, policies, metadata or {}, performance, usable)
    if params.strategy is None:
        from app.jobs.service import resolve_chain  # the service imports this module

        return Plan(resolve_chain(registry, params, param), None)
    selection = route_request(registry, params, performance=performance, usable=usable)
    return Plan(list(selection.chain), selection.record())


def _policy_plan(
    registry: Registry,
    params: RoutedRequest,
    source: PolicySource | None,
    metadata: Mapping[str, str],
    performance: PerformanceSource | None,
    usable: Callable[[ModelInfo], bool] | None,
) -> Plan:
    """The policy's matching rule decides: its models in order (a weighted pick first), or,
    when the rule names a strategy, the best of its models by that strategy."""
    assert params.policy is not None
    try:
        route = resolve(
            source.policies() if source is not None else (),
            name=params.policy,
            request_metadata=metadata,
            tags=params.tags or (),
            tenant_id=source.tenant_id if source is not None else DEFAULT_TENANT,
            rand=random.Random(),
        )
    except NotFound as err:  # in a request body an unknown policy is bad input, not a 404
        raise InvalidInput(err.message, code=err.code, param="policy") from None
    assert route is not None  # a named policy resolves or raises
    record: dict[str, Any] = {"policy": route.policy, "rule": route.rule_index}
    if route.strategy is not None and not route.weighted:
        table = performance() if performance is not None else empty_table()
        request = replace(
            selection_request(params, cast(Strategy, route.strategy), registry),
            max_cost_usd=route.max_cost_usd,
        )
        selection = select_among(registry, table, request, route.models, usable=usable)
        record.update(selection.record(), reason=f"{route.reason}; {selection.reason}")
        return Plan(list(selection.chain), record)
    # Models a stored policy names may have been disabled or removed since, or may not serve
    # what this request needs: skip them, and say which were skipped and why.
    needs = needs_of(params)
    chain: list[ModelInfo] = []
    skipped: list[dict[str, str]] = []
    for name in route.models:
        model = _known(registry, name)
        if model is None:
            skipped.append({"model": name, "reason": "unknown or disabled"})
            continue
        problem = shortfall(needs, model, registry)
        if problem is not None:
            skipped.append({"model": model.id, "reason": problem})
            continue
        chain.append(model)
    if not chain:
        why = "; ".join(f"{s['model']}: {s['reason']}" for s in skipped)
        raise InvalidInput(
            f"none of the models of {route.reason} can serve this request ({why})",
            code="no_model_available",
            param="policy",
        )
    if skipped:
        record["skipped"] = skipped
    record.update(
        strategy=route.strategy,
        model=chain[0].id,
        chain=[m.id for m in chain],
        reason=route.reason,
    )
    return Plan(chain, record)


def _known(registry: Registry, name: str) -> ModelInfo | None:
    try:
        return registry.model(name)
    except InvalidInput:
        return None
