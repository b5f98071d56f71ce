"""``/v1/models``: what this gateway serves, with prices and capabilities."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from app.api.deps import CurrentRegistry
from app.ledger.cost import format_usd

router = APIRouter(prefix="/v1/models", tags=["models"])


class Pricing(BaseModel):
    currency: Literal["USD"] = "USD"
    input_per_mtok: str
    output_per_mtok: str
    cached_input_per_mtok: str | None


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    owned_by: str
    provider: str
    upstream: str
    context_window: int
    max_output_tokens: int
    capabilities: list[str]
    aliases: list[str]
    pricing: Pricing
    deprecated: bool
    simulated: bool


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


@router.get("", summary="Models this gateway serves")
def list_models(registry: CurrentRegistry) -> ModelList:
    data = []
    for model in registry.models.values():
        provider = registry.providers[model.provider]
        if not (model.enabled and provider.enabled):
            continue
        data.append(
            ModelOut(
                id=model.id,
                owned_by=provider.display_name,
                provider=provider.name,
                upstream=model.upstream,
                context_window=model.context_window,
                max_output_tokens=model.max_output_tokens,
                capabilities=sorted(model.capabilities),
                aliases=list(model.aliases),
                pricing=Pricing(
                    input_per_mtok=format_usd(model.input_per_mtok) or "0",
                    output_per_mtok=format_usd(model.output_per_mtok) or "0",
                    cached_input_per_mtok=format_usd(model.cached_input_per_mtok),
                ),
                deprecated=model.deprecated,
                simulated=provider.simulated,
            )
        )
    return ModelList(data=data)
