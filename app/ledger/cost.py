"""Money from tokens and the registry's prices; Decimal throughout, never float."""

from __future__ import annotations

from decimal import Decimal

from app.providers.types import Usage
from app.registry.service import ModelInfo

MILLION = Decimal(1_000_000)
# Prices carry 6 decimals per million tokens, so 12 places hold any token count exactly.
QUANTUM = Decimal("0.000000000001")


def cost_usd(model: ModelInfo, usage: Usage) -> Decimal:
    """What ``usage`` on ``model`` costs at list price; cached input at its own price."""
    cached = min(max(usage.cached_tokens, 0), usage.prompt_tokens)
    cached_price = (
        model.cached_input_per_mtok
        if model.cached_input_per_mtok is not None
        else model.input_per_mtok
    )
    total = (
        Decimal(usage.prompt_tokens - cached) * model.input_per_mtok
        + Decimal(cached) * cached_price
        + Decimal(usage.completion_tokens) * model.output_per_mtok
    ) / MILLION
    return total.quantize(QUANTUM)


def format_usd(amount: Decimal | None) -> str | None:
    """A cost as callers read it: plain notation, no exponent, trailing zeros dropped."""
    if amount is None:
        return None
    text = format(amount.normalize(), "f")
    return text if text != "-0" else "0"
