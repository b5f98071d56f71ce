"""The model registry: providers and models as Postgres holds them, read through a snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, any_, case, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.db.tables import ModelRow, ProviderRow, models, providers
from app.errors import InvalidInput, NotFound, UnknownModel
from app.registry.catalog import Catalog
from app.registry.snapshot import TimedSnapshot


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    name: str
    display_name: str
    wire_format: str
    base_url: str
    api_key_env: str | None
    rpm: int | None
    tpm: int | None
    itpm: int | None
    otpm: int | None
    burst_s: float
    simulated: bool
    enabled: bool
    source: str = "catalog"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    provider: str
    upstream: str
    context_window: int
    max_output_tokens: int
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None
    capabilities: frozenset[str]
    aliases: tuple[str, ...]
    rpm: int | None
    tpm: int | None
    deprecated: bool
    enabled: bool
    source: str = "catalog"


class Registry:
    """An immutable snapshot of the registry; cheap to read on every job."""

    def __init__(self, provider_list: list[ProviderInfo], model_list: list[ModelInfo]) -> None:
        self.providers = {p.name: p for p in provider_list}
        self.models = {m.id: m for m in model_list}
        self._names: dict[str, ModelInfo] = {}
        for m in model_list:
            for alias in m.aliases:
                self._names.setdefault(alias, m)
        self._names.update(self.models)

    def model(self, name: str, *, param: str | None = None) -> ModelInfo:
        """The enabled model called ``name`` (id or alias) on an enabled provider."""
        found = self._names.get(name)
        if found is None or not found.enabled or not self.providers[found.provider].enabled:
            raise UnknownModel(
                f"unknown model {name!r}: see GET /v1/models for the ones this gateway serves",
                param=param,
            )
        return found

    def find(self, name: str) -> ModelInfo | None:
        """The model called ``name`` (id or alias), enabled or not: for the operator's views."""
        return self._names.get(name)

    def provider_of(self, model: ModelInfo) -> ProviderInfo:
        return self.providers[model.provider]


def load_registry(session: Session) -> Registry:
    provider_list = [
        ProviderInfo(
            name=r.name,
            display_name=r.display_name,
            wire_format=r.wire_format,
            base_url=r.base_url,
            api_key_env=r.api_key_env,
            rpm=r.rpm,
            tpm=r.tpm,
            itpm=r.itpm,
            otpm=r.otpm,
            burst_s=r.burst_s,
            simulated=r.simulated,
            enabled=r.enabled,
            source=r.source,
        )
        for r in session.scalars(select(ProviderRow))
    ]
    model_list = [
        ModelInfo(
            id=r.id,
            provider=r.provider,
            upstream=r.upstream,
            context_window=r.context_window,
            max_output_tokens=r.max_output_tokens,
            input_per_mtok=r.input_per_mtok,
            output_per_mtok=r.output_per_mtok,
            cached_input_per_mtok=r.cached_input_per_mtok,
            capabilities=frozenset(r.capabilities),
            aliases=tuple(r.aliases),
            rpm=r.rpm,
            tpm=r.tpm,
            deprecated=r.deprecated,
            enabled=r.enabled,
            source=r.source,
        )
        for r in session.scalars(select(ModelRow).order_by(ModelRow.id))
    ]
    return Registry(provider_list, model_list)


RegistryCache = TimedSnapshot[Registry]


def registry_stamp(session: Session) -> tuple[object, ...]:
    """Changes whenever a provider or model is added, changed or removed (every write sets
    ``updated_at``): tells a snapshot whether reloading would see anything new."""
    provider_part = session.execute(select(func.count(), func.max(ProviderRow.updated_at))).one()
    model_part = session.execute(select(func.count(), func.max(ModelRow.updated_at))).one()
    return (*provider_part, *model_part)


CATALOG = "catalog"


PROVIDER_SETTINGS = ("rpm", "tpm", "itpm", "otpm", "burst_s", "enabled")


def update_provider(session: Session, name: str, changes: dict[str, object]) -> ProviderRow:
    """Change a provider's limits or availability; ``None`` removes a limit."""
    row = session.get(ProviderRow, name)
    if row is None:
        raise NotFound(f"no provider {name!r}", code="provider_not_found")
    for field_name, value in changes.items():
        if field_name not in PROVIDER_SETTINGS:
            raise InvalidInput(f"{field_name!r} is not a provider setting", param=field_name)
        if value is None and field_name in ("burst_s", "enabled"):
            continue  # these can't be removed, only changed
        setattr(row, field_name, value)
        mark_overridden(row, field_name)
    row.updated_at = datetime.now(UTC)
    session.flush()
    return row


def mark_overridden(row: ProviderRow | ModelRow, column: str) -> None:
    """Remember that the operator set ``column``, so a catalog re-sync keeps their value."""
    if column not in row.overrides:
        row.overrides = [*row.overrides, column]


@dataclass(frozen=True, slots=True)
class SyncReport:
    providers: int
    models: int


def _upsert(session: Session, table: Table, rows: list[dict[str, Any]], key: str) -> None:
    """Insert ``rows``, or update the catalog's own rows ``key`` already names.

    What an operator changed through the API wins over the catalog: a column named in a row's
    ``overrides`` keeps its value, and rows the operator added (``source`` other than
    ``catalog``) are not touched at all, even if a newer catalog ships the same name.
    """
    if not rows:
        return
    stmt = insert(table).values(rows)
    changed = {
        column: case(
            (literal(column) == any_(table.c.overrides), table.c[column]),
            else_=stmt.excluded[column],
        )
        for column in rows[0]
        if column != key
    }
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c[key]],
            set_={**changed, "updated_at": stmt.excluded.updated_at},
            where=table.c.source == CATALOG,
        )
    )


def sync_catalog(session: Session, catalog: Catalog) -> SyncReport:
    """Upsert the shipped catalog into the registry; rows it doesn't name are left alone."""
    provider_rows = [
        {
            "name": p.name,
            "display_name": p.display_name,
            "wire_format": p.wire_format,
            "base_url": p.base_url,
            "api_key_env": p.api_key_env,
            "rpm": p.rpm,
            "tpm": p.tpm,
            "itpm": p.itpm,
            "otpm": p.otpm,
            "burst_s": p.burst_s,
            "simulated": p.simulated,
        }
        for p in catalog.providers.values()
    ]
    model_rows = [
        {
            "id": m.id,
            "provider": m.provider,
            "upstream": m.upstream,
            "context_window": m.context_window,
            "max_output_tokens": m.max_output_tokens,
            "input_per_mtok": m.input_per_mtok,
            "output_per_mtok": m.output_per_mtok,
            "cached_input_per_mtok": m.cached_input_per_mtok,
            "capabilities": sorted(m.capabilities),
            "aliases": list(m.aliases),
            "rpm": m.rpm,
            "tpm": m.tpm,
            "deprecated": m.deprecated,
        }
        for m in catalog.models.values()
    ]
    _upsert(session, providers, provider_rows, "name")
    _upsert(session, models, model_rows, "id")
    return SyncReport(len(provider_rows), len(model_rows))
