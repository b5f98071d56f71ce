"""The registry over HTTP: ``/v1/models``, ``/v1/providers`` and ``/v1/keys``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field, SecretStr

from app.api.auth import AdminCaller
from app.api.deps import CurrentRegistry, ReadSession, State, UnitOfWork
from app.api.errors import documented
from app.db.tables import ApiKeyRow, ProviderRow
from app.errors import Unavailable
from app.jobs.schemas import Strict
from app.ledger.cost import format_usd
from app.registry.keys import (
    KeyLimits,
    add_key,
    delete_key,
    get_key,
    list_keys,
    set_enabled,
)
from app.registry.service import ProviderInfo, update_provider

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


# -- providers -----------------------------------------------------------------------------
providers_router = APIRouter(prefix="/v1/providers", tags=["providers"])


class ProviderOut(BaseModel):
    name: str
    display_name: str
    wire_format: str
    base_url: str
    simulated: bool
    enabled: bool
    rpm: int | None = Field(description="Requests per minute, per key (unless a key overrides it).")
    tpm: int | None = Field(description="Tokens per minute, per key.")
    itpm: int | None = Field(description="Input tokens per minute, per key.")
    otpm: int | None = Field(description="Output tokens per minute, per key.")
    burst_s: float = Field(description="Bucket size, in seconds of the limit.")


class ProviderList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ProviderOut]


Limit = Annotated[int, Field(ge=1, le=10**9)]


class ProviderUpdate(Strict):
    """Limits and availability an operator may change; absent fields stay as they are.
    ``null`` removes a limit."""

    rpm: Limit | None = None
    tpm: Limit | None = None
    itpm: Limit | None = None
    otpm: Limit | None = None
    burst_s: Annotated[float, Field(gt=0, le=3600)] | None = None
    enabled: bool | None = None


def _provider_out(p: ProviderInfo | ProviderRow) -> ProviderOut:
    return ProviderOut(
        name=p.name,
        display_name=p.display_name,
        wire_format=p.wire_format,
        base_url=p.base_url,
        simulated=p.simulated,
        enabled=p.enabled,
        rpm=p.rpm,
        tpm=p.tpm,
        itpm=p.itpm,
        otpm=p.otpm,
        burst_s=p.burst_s,
    )


@providers_router.get("", summary="Providers, their endpoints and default per-key limits")
def list_providers(registry: CurrentRegistry) -> ProviderList:
    return ProviderList(data=[_provider_out(p) for p in registry.providers.values()])


@providers_router.patch(
    "/{name}", summary="Change a provider's limits or availability", response_model=ProviderOut
)
def patch_provider(
    name: Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9-]+$")],
    change: ProviderUpdate,
    _: AdminCaller,
    state: State,
    uow: UnitOfWork,
) -> ProviderOut:
    with uow() as session:
        out = _provider_out(update_provider(session, name, change.model_dump(exclude_unset=True)))
    state.registry.invalidate()
    return out


# -- keys ----------------------------------------------------------------------------------
keys_router = APIRouter(prefix="/v1/keys", tags=["keys"])


class KeyCreate(Strict):
    provider: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")]
    label: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\x20-\x7e]+$")]
    secret: Annotated[SecretStr, Field(description="The provider's API key; never shown again.")]
    rpm: Limit | None = None
    tpm: Limit | None = None
    itpm: Limit | None = None
    otpm: Limit | None = None


class KeyOut(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    provider: str
    label: str
    fingerprint: str
    enabled: bool
    disabled_reason: str | None
    rpm: int | None
    tpm: int | None
    itpm: int | None
    otpm: int | None


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyOut]


def _key_out(row: ApiKeyRow) -> KeyOut:
    return KeyOut(
        id=row.id,
        provider=row.provider,
        label=row.label,
        fingerprint=row.fingerprint,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        rpm=row.rpm,
        tpm=row.tpm,
        itpm=row.itpm,
        otpm=row.otpm,
    )


KeyId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_]+$")]


@keys_router.post(
    "",
    status_code=201,
    summary="Store a provider API key (encrypted)",
    response_model=KeyOut,
    responses=documented(409),
)
def create_key(
    body: KeyCreate, _: AdminCaller, state: State, uow: UnitOfWork, registry: CurrentRegistry
) -> KeyOut:
    if state.secrets is None:
        raise Unavailable("set SWITCHBOARD_SECRET_KEY to store provider keys", code="no_secret_key")
    limits = KeyLimits(body.rpm, body.tpm, body.itpm, body.otpm)
    with uow() as session:
        row = add_key(
            session,
            state.secrets,
            registry,
            provider=body.provider,
            label=body.label,
            secret=body.secret.get_secret_value(),
            limits=limits,
        )
        return _key_out(row)


@keys_router.get("", summary="Stored keys, by fingerprint")
def read_keys(
    _: AdminCaller,
    session: ReadSession,
    provider: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9-]+$")] = None,
) -> KeyList:
    return KeyList(data=[_key_out(r) for r in list_keys(session, provider)])


@keys_router.post("/{key_id}/enable", summary="Use a disabled key again", response_model=KeyOut)
def enable_key(key_id: KeyId, _: AdminCaller, uow: UnitOfWork) -> KeyOut:
    with uow() as session:
        get_key(session, key_id)
        set_enabled(session, key_id, True)
        session.expire_all()
        return _key_out(get_key(session, key_id))


@keys_router.delete("/{key_id}", status_code=204, summary="Forget a stored key")
def remove_key(key_id: KeyId, _: AdminCaller, uow: UnitOfWork) -> Response:
    with uow() as session:
        delete_key(session, key_id)
    return Response(status_code=204)
