"""``/v1/providers``: endpoints, their limits and models; operators add and discover their own."""

from __future__ import annotations

from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, Path
from pydantic import AnyHttpUrl, BaseModel, Field, StrictBool, field_validator
from sqlalchemy import func, select

from app.api.auth import AdminCaller, CurrentCaller
from app.api.deps import CurrentRegistry, ReadSession, State, UnitOfWork
from app.api.errors import ErrorBody, documented
from app.db.tables import ApiKeyRow, ModelRow, ProviderRow
from app.jobs.schemas import Strict
from app.providers import WIRE_FORMATS
from app.registry.catalog import PROVIDER_NAME_PATTERN
from app.registry.discovery import list_upstream_models, register_discovered
from app.registry.keys import load_keyring
from app.registry.models_api import BreakerView, breaker_view
from app.registry.registration import NewProvider, get_provider, register_provider
from app.registry.service import ProviderInfo, update_provider
from app.routing.breakers import provider_target

router = APIRouter(prefix="/v1/providers", tags=["providers"])

ProviderName = Annotated[str, Path(max_length=64, pattern=PROVIDER_NAME_PATTERN)]
Limit = Annotated[int, Field(ge=1, le=10**9, strict=True)]
BurstS = Annotated[float, Field(gt=0, le=3600, strict=True)]


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


class KeyCounts(BaseModel):
    enabled: int
    disabled: int


class ProviderDetail(ProviderOut):
    source: str = Field(description="catalog, or api (added by an operator).")
    api_key_env: str | None
    breaker: BreakerView | None
    models: list[str]
    keys: KeyCounts


class ProviderUpdate(Strict):
    """Limits and availability an operator may change; absent fields stay as they are.
    ``null`` removes a limit. Changed fields are kept across catalog re-syncs."""

    rpm: Limit | None = None
    tpm: Limit | None = None
    itpm: Limit | None = None
    otpm: Limit | None = None
    burst_s: BurstS | None = None
    enabled: StrictBool | None = None


class ProviderCreate(Strict):
    """An endpoint speaking one of the gateway's wire formats (any OpenAI-compatible server:
    ``openai``, or ``vllm``/``lmstudio``/``groq``/``openrouter`` for their quirks)."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=PROVIDER_NAME_PATTERN)]
    display_name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\x20-\x7e]+$")]
    base_url: AnyHttpUrl
    wire_format: str = "openai"
    api_key_env: Annotated[str, Field(max_length=100, pattern=r"^[A-Z_][A-Z0-9_]*$")] | None = None
    rpm: Limit | None = None
    tpm: Limit | None = None
    itpm: Limit | None = None
    otpm: Limit | None = None
    burst_s: BurstS = 60

    @field_validator("wire_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in WIRE_FORMATS:
            raise ValueError(f"must be one of {', '.join(WIRE_FORMATS)}")
        return value

    @field_validator("base_url")
    @classmethod
    def _plain_url(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        if value.username or value.password or value.query or value.fragment:
            raise ValueError("must be a plain http(s) URL: no credentials, query or fragment")
        return value


def provider_out(p: ProviderInfo | ProviderRow) -> ProviderOut:
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


@router.get("", summary="Providers, their endpoints and default per-key limits")
def list_providers(registry: CurrentRegistry, caller: CurrentCaller) -> ProviderList:
    return ProviderList(data=[provider_out(p) for p in registry.providers.values()])


@router.get("/{name}", summary="One provider: status, breaker, models and key counts")
def read_provider(
    name: ProviderName, session: ReadSession, state: State, caller: CurrentCaller
) -> ProviderDetail:
    row = get_provider(session, name)
    models = session.scalars(
        select(ModelRow.id).where(ModelRow.provider == name).order_by(ModelRow.id)
    ).all()
    counts = dict(
        session.execute(
            select(ApiKeyRow.enabled, func.count())
            .where(ApiKeyRow.provider == name)
            .group_by(ApiKeyRow.enabled)
        )
        .tuples()
        .all()
    )
    return ProviderDetail(
        **provider_out(row).model_dump(),
        source=row.source,
        api_key_env=row.api_key_env,
        breaker=breaker_view(state, provider_target(name)),
        models=list(models),
        keys=KeyCounts(enabled=counts.get(True, 0), disabled=counts.get(False, 0)),
    )


@router.post(
    "",
    status_code=201,
    summary="Add a provider endpoint",
    response_model=ProviderDetail,
    responses=documented(409),
)
def create_provider(
    body: ProviderCreate, state: State, uow: UnitOfWork, caller: AdminCaller
) -> ProviderDetail:
    limits = body.model_dump(include={"rpm", "tpm", "itpm", "otpm", "burst_s"})
    with uow() as session:
        register_provider(
            session,
            NewProvider(
                name=body.name,
                display_name=body.display_name,
                wire_format=body.wire_format,
                base_url=str(body.base_url).rstrip("/"),
                api_key_env=body.api_key_env,
                limits=limits,
            ),
        )
    state.registry.invalidate()
    with state.sessions() as session:
        return read_provider(body.name, session, state, caller)


@router.patch(
    "/{name}", summary="Change a provider's limits or availability", response_model=ProviderOut
)
def patch_provider(
    name: ProviderName, change: ProviderUpdate, state: State, uow: UnitOfWork, _: AdminCaller
) -> ProviderOut:
    with uow() as session:
        out = provider_out(update_provider(session, name, change.model_dump(exclude_unset=True)))
    state.registry.invalidate()
    return out


class DiscoveryOut(BaseModel):
    provider: str
    added: list[str] = Field(description="Models registered now, with conservative defaults.")
    known: list[str] = Field(description="Models this provider already had.")
    skipped: list[str] = Field(description="Listed names that could not become model ids.")


@router.post(
    "/{name}/discover",
    summary="Register the models the provider lists that the gateway doesn't know yet",
    responses={
        424: {"model": ErrorBody, "description": "The provider's model list could not be read"}
    },
)
def discover_models(
    name: ProviderName, state: State, uow: UnitOfWork, _: AdminCaller
) -> DiscoveryOut:
    with state.sessions() as session:
        provider = get_provider(session, name)
        ring = load_keyring(session, state.registry.get(), state.secrets)
    secret = next((k.secret for k in ring.keys(name) if k.secret), None)
    with httpx.Client(follow_redirects=False) as client:
        names = list_upstream_models(provider, client, secret)
    with uow() as session:
        found = register_discovered(session, get_provider(session, name), names)
    state.registry.invalidate()
    return DiscoveryOut(provider=name, added=found.added, known=found.known, skipped=found.skipped)
