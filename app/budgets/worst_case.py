"""The most a job can cost: what a budget reserves before the job is dispatched."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from app.ledger.cost import cost_usd
from app.providers.types import Usage
from app.ratelimit.estimate import estimate_request
from app.registry.service import ModelInfo


def worst_case_usd(request: dict[str, Any], chain: Sequence[ModelInfo]) -> Decimal:
    """The dearest model of the chain at an upper bound of the prompt and the most output
    the request allows (a fallback may land on any model of the chain); an embedding job's
    inputs and no output."""
    return max(
        cost_usd(model, Usage(*estimate_request(request, model.max_output_tokens)))
        for model in chain
    )
