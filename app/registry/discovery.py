"""Model discovery: ask a provider which models it serves and register the ones not yet known.

OpenAI-compatible endpoints (and Anthropic's) list models at ``GET {base_url}/models`` as
``{"data": [{"id": ...}]}``; Ollama at ``GET {base_url}/api/tags`` as
``{"models": [{"name": ...}]}``. A new model is registered as ``<provider>/<upstream>`` with
conservative defaults, because a model list says nothing about capabilities or prices:

- capabilities ``["chat"]``;
- prices 0 (the ledger then records tokens but no cost: set real prices with ``PATCH``);
- a context window of ``DEFAULT_CONTEXT_WINDOW`` (8,192) tokens and ``DEFAULT_MAX_OUTPUT``
  (4,096) output tokens: small enough that no request is admitted that most models refuse.

A model is already known when one of the provider's models has that upstream name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.tables import ModelRow, ProviderRow
from app.errors import InvalidInput, SwitchboardError
from app.registry.catalog import MODEL_ID_PATTERN
from app.registry.registration import DISCOVERED, NewModel, register_model, taken_names

DEFAULT_CONTEXT_WINDOW = 8192
DEFAULT_MAX_OUTPUT = 4096
DISCOVERY_TIMEOUT_S = 10.0
MAX_DISCOVERED = 1000  # a model list longer than this is refused rather than half-imported

_OPENAI_STYLE = frozenset({"openai", "openrouter", "groq", "vllm", "lmstudio"})
_MODEL_ID = re.compile(MODEL_ID_PATTERN)


class DiscoveryFailed(SwitchboardError):
    """The provider's model list could not be read: a failed dependency (424), not a fault of
    the gateway (so not a 5xx): its base URL, key or the provider itself needs looking at."""

    code = "discovery_failed"
    http_status = 424


@dataclass(frozen=True, slots=True)
class Discovery:
    added: list[str]  # model ids registered now
    known: list[str]  # ids of models this provider already had for a listed upstream name
    skipped: list[str]  # listed names that cannot be model ids (or whose id is taken)


def list_upstream_models(
    provider: ProviderRow, client: httpx.Client, secret: str | None
) -> list[str]:
    """The model names ``provider`` says it serves, sorted and without duplicates."""
    base = provider.base_url.rstrip("/")
    headers: dict[str, str] = {}
    if provider.wire_format in _OPENAI_STYLE:
        url, field, name_key = f"{base}/models", "data", "id"
        if secret:
            headers["authorization"] = f"Bearer {secret}"
    elif provider.wire_format == "anthropic":
        url, field, name_key = f"{base}/models", "data", "id"
        headers["anthropic-version"] = "2023-06-01"
        if secret:
            headers["x-api-key"] = secret
    elif provider.wire_format == "ollama":
        url, field, name_key = f"{base}/api/tags", "models", "name"
    else:
        raise InvalidInput(
            f"discovery is not supported for wire format {provider.wire_format!r}",
            code="discovery_unsupported",
        )
    try:
        response = client.get(url, headers=headers, timeout=DISCOVERY_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise DiscoveryFailed(
            f"cannot list the models of {provider.name!r}: {type(exc).__name__}"
        ) from None
    if response.status_code != 200:
        raise DiscoveryFailed(
            f"{provider.name!r} answered HTTP {response.status_code} to its model list",
        )
    return _names(provider.name, response, field, name_key)


def _names(provider: str, response: httpx.Response, field: str, name_key: str) -> list[str]:
    try:
        entries: Any = response.json()[field]
        names = {str(entry[name_key]) for entry in entries}
    except (ValueError, KeyError, TypeError):
        raise DiscoveryFailed(
            f"{provider!r} answered its model list in an unexpected shape",
        ) from None
    if len(names) > MAX_DISCOVERED:
        raise DiscoveryFailed(
            f"{provider!r} lists {len(names)} models, more than {MAX_DISCOVERED}",
        )
    return sorted(names)


def register_discovered(session: Session, provider: ProviderRow, names: list[str]) -> Discovery:
    """Register the models in ``names`` that ``provider`` doesn't serve yet."""
    existing = session.execute(
        select(ModelRow.upstream, ModelRow.id)
        .where(ModelRow.provider == provider.name)
        .order_by(ModelRow.id)
    ).all()
    by_upstream: dict[str, str] = {}
    for upstream, model_id in existing:
        by_upstream.setdefault(upstream, model_id)
    taken = taken_names(session)
    added, known, skipped = [], [], []
    for name in names:
        if name in by_upstream:
            known.append(by_upstream[name])
            continue
        model_id = f"{provider.name}/{name}"
        if not _MODEL_ID.fullmatch(model_id) or model_id in taken:
            skipped.append(name)
            continue
        register_model(
            session,
            NewModel(
                id=model_id,
                provider=provider.name,
                upstream=name,
                capabilities=frozenset({"chat"}),
                context_window=DEFAULT_CONTEXT_WINDOW,
                max_output_tokens=DEFAULT_MAX_OUTPUT,
                source=DISCOVERED,
            ),
        )
        added.append(model_id)
    return Discovery(added=added, known=sorted(set(known)), skipped=skipped)
