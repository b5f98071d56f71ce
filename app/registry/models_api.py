"""``/v1/models``: the models this gateway serves; operators register and edit their own."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field, StrictBool, field_validator
from starlette.convertors import Convertor, register_url_convertor

from app.api.auth import AdminCaller, CurrentCaller
from app.api.deps import CurrentRegistry, State, UnitOfWork
from app.api.errors import documented
from app.errors import NotFound
from app.jobs.schemas import Strict
from app.ledger.cost import format_usd
from app.registry.catalog import MODEL_ID_PATTERN, PROVIDER_NAME_PATTERN, Capability, parse_price
from app.registry.registration import NewModel, register_model, update_model
from app.registry.service import ModelInfo, Registry
from app.routing.breakers import BreakerState, model_target, provider_target


class ModelIdConvertor(Convertor[str]):
    """A model id in a path: may hold "/" ("ollama/llama3.1:8b"), but doesn't end in an action
    or a sub-resource ("/deprecate", "/performance"), so ``PATCH /v1/models/x/deprecate`` is a
    405, not model "x/deprecate", and ``/v1/models/x/performance`` reaches its own route."""

    regex = r"[^/].*?(?<!/deprecate)(?<!/performance)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("model_id", ModelIdConvertor())

router = APIRouter(prefix="/v1/models", tags=["models"])

Status = Literal["active", "deprecated", "disabled"]
Limit = Annotated[int, Field(ge=1, le=10**9, strict=True)]
ModelName = Annotated[str, Field(min_length=1, max_length=200, pattern=MODEL_ID_PATTERN)]
# Model ids may hold "/" ("ollama/llama3.1:8b"), hence a path-typed parameter.
ModelPath = Annotated[str, Path(max_length=200, pattern=MODEL_ID_PATTERN)]


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
    status: Status
    source: str = Field(description="catalog, api (registered by an operator) or discovered.")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class BreakerView(BaseModel):
    state: BreakerState
    consecutive_failures: int
    open_until: float | None
    last_failure: str | None


class ModelDetail(ModelOut):
    rpm: int | None = Field(description="Requests per minute per key; None: the provider's.")
    tpm: int | None = Field(description="Tokens per minute per key; None: the provider's.")
    breaker: BreakerView | None = Field(description="The model's own breaker.")
    provider_breaker: BreakerView | None = Field(description="Its provider's breaker.")


def status_of(model: ModelInfo, registry: Registry) -> Status:
    if not (model.enabled and registry.providers[model.provider].enabled):
        return "disabled"
    return "deprecated" if model.deprecated else "active"


def model_out(model: ModelInfo, registry: Registry) -> ModelOut:
    provider = registry.providers[model.provider]
    return ModelOut(
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
        status=status_of(model, registry),
        source=model.source,
    )


def breaker_view(state: State, target: str) -> BreakerView | None:
    """A breaker's state, or None when breakers aren't configured (no Redis)."""
    if state.breakers is None:
        return None
    status = state.breakers.status(target)
    return BreakerView(
        state=status.state,
        consecutive_failures=status.consecutive_failures,
        open_until=status.open_until,
        last_failure=status.last_failure,
    )


@router.get("", summary="Models this gateway serves")
def list_models(
    registry: CurrentRegistry,
    caller: CurrentCaller,
    provider: Annotated[str | None, Query(max_length=64, pattern=PROVIDER_NAME_PATTERN)] = None,
    capability: Annotated[
        list[Capability] | None, Query(description="Repeatable; a model must have all.")
    ] = None,
    status: Annotated[
        Literal["active", "deprecated", "disabled", "all"] | None,
        Query(description="Default: active and deprecated models (the ones jobs may name)."),
    ] = None,
) -> ModelList:
    wanted = set(capability or ())
    data = []
    for model in registry.models.values():
        model_status = status_of(model, registry)
        if status is None and model_status == "disabled":
            continue
        if status not in (None, "all", model_status):
            continue
        if provider is not None and model.provider != provider:
            continue
        if not wanted <= model.capabilities:
            continue
        data.append(model_out(model, registry))
    return ModelList(data=data)


def _detail(name: str, state: State) -> ModelDetail:
    registry = state.registry.get()
    model = registry.find(name)
    if model is None:
        raise NotFound(f"no model {name!r}", code="model_not_found")
    return ModelDetail(
        **model_out(model, registry).model_dump(),
        rpm=model.rpm,
        tpm=model.tpm,
        breaker=breaker_view(state, model_target(model.id)),
        provider_breaker=breaker_view(state, provider_target(model.provider)),
    )


Price = Annotated[Decimal, Field(description='USD per million tokens, as a string: "0.15".')]


class _Priced(Strict):
    @field_validator(
        "input_per_mtok",
        "output_per_mtok",
        "cached_input_per_mtok",
        mode="before",
        check_fields=False,
    )
    @classmethod
    def _price(cls, value: object) -> Decimal | None:
        return None if value is None else parse_price(value)


class ModelCreate(_Priced):
    id: ModelName
    provider: Annotated[str, Field(max_length=64, pattern=PROVIDER_NAME_PATTERN)]
    upstream: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
    capabilities: Annotated[list[Capability], Field(min_length=1)]
    context_window: Annotated[int, Field(ge=1, le=100_000_000, strict=True)]
    max_output_tokens: Annotated[int, Field(ge=1, le=100_000_000, strict=True)]
    input_per_mtok: Price
    output_per_mtok: Price
    cached_input_per_mtok: Price | None = None
    aliases: Annotated[list[ModelName], Field(max_length=20)] = []
    rpm: Limit | None = None
    tpm: Limit | None = None
    deprecated: StrictBool = False


class ModelUpdate(_Priced):
    """What an operator may change; absent fields stay, ``null`` removes a limit. A catalog
    model's changed fields are kept across catalog re-syncs (``switchboard migrate``)."""

    input_per_mtok: Price | None = None
    output_per_mtok: Price | None = None
    cached_input_per_mtok: Price | None = None
    capabilities: Annotated[list[Capability], Field(min_length=1)] | None = None
    rpm: Limit | None = None
    tpm: Limit | None = None
    enabled: StrictBool | None = None
    deprecated: StrictBool | None = None


@router.post(
    "",
    status_code=201,
    summary="Register a model of a known provider",
    response_model=ModelDetail,
    responses=documented(409),
)
def create_model(body: ModelCreate, state: State, uow: UnitOfWork, _: AdminCaller) -> ModelDetail:
    with uow() as session:
        register_model(
            session,
            NewModel(
                id=body.id,
                provider=body.provider,
                upstream=body.upstream,
                capabilities=frozenset(body.capabilities),
                context_window=body.context_window,
                max_output_tokens=body.max_output_tokens,
                input_per_mtok=body.input_per_mtok,
                output_per_mtok=body.output_per_mtok,
                cached_input_per_mtok=body.cached_input_per_mtok,
                aliases=tuple(body.aliases),
                rpm=body.rpm,
                tpm=body.tpm,
                deprecated=body.deprecated,
            ),
        )
    state.registry.invalidate()
    return _detail(body.id, state)


@router.post(
    "/{model_id:model_id}/deprecate",
    summary="Mark a model deprecated (still served; listed as such)",
    response_model=ModelDetail,
)
def deprecate_model(
    model_id: ModelPath, state: State, uow: UnitOfWork, _: AdminCaller
) -> ModelDetail:
    return _change(model_id, {"deprecated": True}, state, uow)


@router.get("/{model_id:model_id}", summary="One model, its limits and breakers")
def read_model(model_id: ModelPath, state: State, caller: CurrentCaller) -> ModelDetail:
    return _detail(model_id, state)


@router.patch("/{model_id:model_id}", summary="Change a model", response_model=ModelDetail)
def patch_model(
    model_id: ModelPath, change: ModelUpdate, state: State, uow: UnitOfWork, _: AdminCaller
) -> ModelDetail:
    return _change(model_id, change.model_dump(exclude_unset=True), state, uow)


def _change(name: str, changes: dict[str, object], state: State, uow: UnitOfWork) -> ModelDetail:
    with uow() as session:
        model_id = update_model(session, name, changes).id
    state.registry.invalidate()
    return _detail(model_id, state)
