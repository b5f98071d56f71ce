"""Turning a submitted request into its fallback chain: the named models, or a selection.

Job and batch submission call :func:`plan_chain` once per request; a request that names its
models gets them resolved as before, a ``strategy`` request gets :func:`select`'s chain and a
routing record (stored in ``jobs.routing``) saying what was chosen and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.jobs.schemas import ChatParams
from app.ratelimit.estimate import estimate_prompt_tokens
from app.registry.service import ModelInfo, Registry
from app.routing.performance import PerformanceTable, empty_table
from app.routing.selection import Selection, SelectionRequest, select

PerformanceSource = Callable[[], PerformanceTable]


@dataclass(frozen=True, slots=True)
class Plan:
    chain: list[ModelInfo]
    routing: dict[str, Any] | None


def selection_request(params: ChatParams) -> SelectionRequest:
    """What a strategy request needs: its token estimate, its capabilities, its filters.

    Capabilities the body itself implies (tools, a JSON response format, image parts) are
    required too, so the gateway never routes a request to a model that cannot serve it.
    """
    assert params.strategy is not None
    body = params.to_request()
    route = params.route
    needed = {"chat", *(route.capabilities or [] if route else [])}
    if params.tools:
        needed.add("tools")
    if (params.response_format or {}).get("type") in ("json_object", "json_schema"):
        needed.add("json_mode")
    if _has_images(body.get("messages", [])):
        needed.add("vision")
    return SelectionRequest(
        strategy=params.strategy,
        input_tokens=estimate_prompt_tokens(body.get("messages", []), params.tools),
        max_tokens=params.max_tokens,
        capabilities=frozenset(needed),
        max_cost_usd=route.max_cost_usd if route else None,
        prefer_models=tuple(route.prefer_models) if route else (),
        prefer_providers=tuple(route.prefer_providers) if route else (),
        exclude_models=tuple(route.exclude_models) if route else (),
        weights={str(k): v for k, v in route.weights.items()} if route and route.weights else None,
    )


def route_request(
    registry: Registry,
    params: ChatParams,
    *,
    performance: PerformanceSource | None = None,
    usable: Callable[[ModelInfo], bool] | None = None,
) -> Selection:
    """The selection for a ``strategy`` request (also ``POST /v1/route``'s dry run)."""
    table = performance() if performance is not None else empty_table()
    return select(registry, table, selection_request(params), usable=usable)


def plan_chain(
    registry: Registry,
    params: ChatParams,
    *,
    performance: PerformanceSource | None = None,
    usable: Callable[[ModelInfo], bool] | None = None,
    param: str = "model",
) -> Plan:
    """The request's chain: its named models (checked), or the chosen model and fallbacks."""
    if params.strategy is None:
        from app.jobs.service import resolve_chain  # the service imports this module

        return Plan(resolve_chain(registry, params, param), None)
    selection = route_request(registry, params, performance=performance, usable=usable)
    return Plan(list(selection.chain), selection.record())


def _has_images(messages: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(part, dict) and part.get("type") in ("image_url", "image")
        for message in messages
        if isinstance(message.get("content"), list)
        for part in message["content"]
    )
