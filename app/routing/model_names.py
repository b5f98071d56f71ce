"""How OpenAI-compatible endpoints take a route in ``model``, the one field OpenAI's SDKs send.

``"policy:<name>"`` names a routing policy and ``"strategy:<name>"`` lets the gateway choose;
any other string is a model id (and a list is a fallback chain).
"""

from __future__ import annotations

from typing import Any

POLICY_PREFIX = "policy:"
STRATEGY_PREFIX = "strategy:"


def route_from_model_name(data: Any) -> Any:
    """A request body with ``model: "policy:x"`` / ``"strategy:y"`` moved to ``policy`` /
    ``strategy`` (a ``mode="before"`` validator); anything else unchanged."""
    if not isinstance(data, dict):
        return data
    model = data.get("model")
    if isinstance(model, str):
        for prefix, field in ((POLICY_PREFIX, "policy"), (STRATEGY_PREFIX, "strategy")):
            if model.startswith(prefix):
                data = {k: v for k, v in data.items() if k != "model"}
                data[field] = model.removeprefix(prefix)
    return data
