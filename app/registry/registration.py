"""Changing the registry at runtime: operators add providers and models, and edit models.

The catalog (``catalog.toml``) seeds the registry; everything here is the operator's own and
survives a re-sync: rows added here have ``source`` other than ``catalog`` (never touched by
``sync_catalog``), and a catalog row's edited columns are listed in its ``overrides`` (kept).
The caller invalidates the registry snapshot after committing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import any_, func, literal, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.tables import ModelRow, ProviderRow
from app.errors import Conflict, InvalidInput, NotFound
from app.registry.service import mark_overridden

API = "api"
DISCOVERED = "discovered"

# Serialises registrations, so two concurrent ones can't claim the same alias.
_NAMES_LOCK = 0x5B_7E61_57E2


@dataclass(frozen=True, slots=True)
class NewModel:
    id: str
    provider: str
    upstream: str
    capabilities: frozenset[str]
    context_window: int
    max_output_tokens: int
    input_per_mtok: Decimal = Decimal(0)
    output_per_mtok: Decimal = Decimal(0)
    cached_input_per_mtok: Decimal | None = None
    aliases: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None
    deprecated: bool = False
    source: str = API


@dataclass(frozen=True, slots=True)
class NewProvider:
    name: str
    display_name: str
    wire_format: str
    base_url: str
    api_key_env: str | None = None
    limits: dict[str, Any] = field(default_factory=dict)  # rpm, tpm, itpm, otpm, burst_s


MODEL_SETTINGS = frozenset(
    {
        "input_per_mtok",
        "output_per_mtok",
        "cached_input_per_mtok",
        "capabilities",
        "rpm",
        "tpm",
        "enabled",
        "deprecated",
    }
)


def get_provider(session: Session, name: str) -> ProviderRow:
    row = session.get(ProviderRow, name)
    if row is None:
        raise NotFound(f"no provider {name!r}", code="provider_not_found")
    return row


def get_model(session: Session, name: str) -> ModelRow:
    """The model with id or alias ``name``, enabled or not."""
    row = (
        session.get(ModelRow, name)
        or session.scalars(
            select(ModelRow)
            .where(literal(name) == any_(ModelRow.aliases))
            .order_by(ModelRow.id)
            .limit(1)
        ).first()
    )
    if row is None:
        raise NotFound(f"no model {name!r}", code="model_not_found")
    return row


def taken_names(session: Session) -> set[str]:
    """Every model id and alias in use, enabled or not."""
    ids = session.scalars(select(ModelRow.id))
    aliases = session.scalars(select(func.unnest(ModelRow.aliases)))
    return {*ids, *aliases}


def register_model(session: Session, model: NewModel) -> ModelRow:
    """Add ``model``; 409 ``model_exists`` if its id or an alias is already some model's name."""
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _NAMES_LOCK})
    if session.get(ProviderRow, model.provider) is None:
        raise InvalidInput(
            f"unknown provider {model.provider!r}", code="unknown_provider", param="provider"
        )
    if model.max_output_tokens > model.context_window:
        raise InvalidInput(
            f"max_output_tokens ({model.max_output_tokens}) exceeds "
            f"context_window ({model.context_window})",
            param="max_output_tokens",
        )
    names = [model.id, *model.aliases]
    if len(set(names)) != len(names):
        raise InvalidInput("an alias repeats the id or another alias", param="aliases")
    clash = sorted(set(names) & taken_names(session))
    if clash:
        raise Conflict(
            f"{', '.join(repr(n) for n in clash)} already names a model", code="model_exists"
        )
    row = ModelRow(
        id=model.id,
        provider=model.provider,
        upstream=model.upstream,
        context_window=model.context_window,
        max_output_tokens=model.max_output_tokens,
        input_per_mtok=model.input_per_mtok,
        output_per_mtok=model.output_per_mtok,
        cached_input_per_mtok=model.cached_input_per_mtok,
        capabilities=sorted(model.capabilities),
        aliases=list(model.aliases),
        rpm=model.rpm,
        tpm=model.tpm,
        deprecated=model.deprecated,
        source=model.source,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"model {model.id!r} already exists", code="model_exists") from None
    return row


def update_model(session: Session, name: str, changes: dict[str, Any]) -> ModelRow:
    """Change a model's prices, capabilities, limits or status; ``None`` removes a limit."""
    row = get_model(session, name)
    for column, value in changes.items():
        if column not in MODEL_SETTINGS:
            raise InvalidInput(f"{column!r} is not a model setting", param=column)
        if value is None and column in ("input_per_mtok", "output_per_mtok", "enabled"):
            raise InvalidInput(f"{column} cannot be removed, only changed", param=column)
        if column == "capabilities":
            value = sorted(value)
        setattr(row, column, value)
        mark_overridden(row, column)
    row.updated_at = datetime.now(UTC)
    session.flush()
    return row


def register_provider(session: Session, provider: NewProvider) -> ProviderRow:
    """Add an endpoint; 409 ``provider_exists`` if the name is taken."""
    if session.get(ProviderRow, provider.name) is not None:
        raise Conflict(f"provider {provider.name!r} already exists", code="provider_exists")
    row = ProviderRow(
        name=provider.name,
        display_name=provider.display_name,
        wire_format=provider.wire_format,
        base_url=provider.base_url,
        api_key_env=provider.api_key_env,
        simulated=False,
        source=API,
        **provider.limits,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            f"provider {provider.name!r} already exists", code="provider_exists"
        ) from None
    return row
