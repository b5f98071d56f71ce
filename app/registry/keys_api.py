"""Provider API keys over HTTP, under their provider: ``/v1/providers/{name}/keys``.

``/v1/keys`` (the first form, with the provider in the body or query) stays as an alias over
the same functions. Every route is admin-only, reads included: even masked, a key listing says
which accounts the gateway bills. A secret goes in once (create, rotate) and never comes out;
a listing shows its last four characters, status and usage from the ledger.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field, SecretStr
from sqlalchemy.orm import Session

from app.api.auth import AdminCaller
from app.api.deps import CurrentRegistry, ReadSession, State, UnitOfWork
from app.api.errors import documented
from app.db.tables import ApiKeyRow
from app.errors import InvalidInput, NotFound, Unavailable
from app.jobs.schemas import Strict
from app.ledger.cost import format_usd
from app.registry.catalog import PROVIDER_NAME_PATTERN
from app.registry.key_usage import KeyUsage, usage_by_key
from app.registry.keys import (
    KeyLimits,
    add_key,
    delete_key,
    get_key,
    list_keys,
    rotate_key,
    set_enabled,
)
from app.registry.secrets import SecretBox

provider_keys_router = APIRouter(prefix="/{name}/keys", tags=["keys"])  # under /v1/providers
keys_router = APIRouter(prefix="/v1/keys", tags=["keys"])

ProviderName = Annotated[str, Path(max_length=64, pattern=PROVIDER_NAME_PATTERN)]
KeyId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_]+$")]
Limit = Annotated[int, Field(ge=1, le=10**9, strict=True)]
Label = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\x20-\x7e]+$")]
Secret = Annotated[SecretStr, Field(description="The provider's API key; never shown again.")]
DEFAULT_USAGE_WINDOW = timedelta(hours=1)  # see key_usage: cheap at 500 jobs/s
UsageSince = Annotated[
    str | None,
    Query(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$",
        description="Count usage from this ISO 8601 time on, with its zone (default: 1h ago).",
    ),
]


class ProviderKeyCreate(Strict):
    label: Label
    secret: Secret
    rpm: Limit | None = None
    tpm: Limit | None = None
    itpm: Limit | None = None
    otpm: Limit | None = None


class KeyCreate(ProviderKeyCreate):
    provider: Annotated[str, Field(min_length=1, max_length=64, pattern=PROVIDER_NAME_PATTERN)]


class KeyRotate(Strict):
    secret: Secret


class DisableBody(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=500)] = "disabled by an operator"


class UsageOut(BaseModel):
    since: datetime
    calls: int
    failed_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: str


class KeyOut(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    provider: str
    label: str
    last_four: str | None = Field(description="None for keys under 16 characters.")
    fingerprint: str
    status: Literal["enabled", "disabled"]
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    rpm: int | None
    tpm: int | None
    itpm: int | None
    otpm: int | None
    usage: UsageOut
    last_used_at: datetime | None


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyOut]


def _since(since: str | None) -> datetime:
    if since is None:
        return datetime.now(UTC) - DEFAULT_USAGE_WINDOW
    try:
        return datetime.fromisoformat(since)
    except ValueError:
        raise InvalidInput(f"since: {since!r} is not a valid time", param="since") from None


def _key_out(row: ApiKeyRow, usage: KeyUsage, since: datetime) -> KeyOut:
    return KeyOut(
        id=row.id,
        provider=row.provider,
        label=row.label,
        last_four=row.last_four,
        fingerprint=row.fingerprint,
        status="enabled" if row.enabled else "disabled",
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        disabled_at=row.disabled_at,
        rpm=row.rpm,
        tpm=row.tpm,
        itpm=row.itpm,
        otpm=row.otpm,
        usage=UsageOut(
            since=since,
            calls=usage.calls,
            failed_calls=usage.failed_calls,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=format_usd(usage.cost_usd) or "0",
        ),
        last_used_at=usage.last_used_at,
    )


def _listing(session: Session, rows: list[ApiKeyRow], since: str | None) -> KeyList:
    start = _since(since)
    usage = usage_by_key(session, [r.id for r in rows], start)
    return KeyList(data=[_key_out(r, usage.get(r.id, KeyUsage()), start) for r in rows])


def _one(session: Session, key_id: str) -> KeyOut:
    return _listing(session, [get_key(session, key_id)], None).data[0]


def _box(state: State) -> SecretBox:
    if state.secrets is None:
        raise Unavailable("set SWITCHBOARD_SECRET_KEY to store provider keys", code="no_secret_key")
    return state.secrets


def _owned(session: Session, provider: str | None, key_id: str) -> ApiKeyRow:
    """Key ``key_id``, if it belongs to ``provider`` (any provider when None)."""
    row = get_key(session, key_id)
    if provider is not None and row.provider != provider:
        raise NotFound(f"provider {provider!r} has no key {key_id!r}", code="key_not_found")
    return row


# -- the operations, shared by both routers -----------------------------------------------
def _create(
    provider: str, body: ProviderKeyCreate, state: State, uow: UnitOfWork, registry: CurrentRegistry
) -> KeyOut:
    box = _box(state)
    with uow() as session:
        row = add_key(
            session,
            box,
            registry,
            provider=provider,
            label=body.label,
            secret=body.secret.get_secret_value(),
            limits=KeyLimits(body.rpm, body.tpm, body.itpm, body.otpm),
        )
        return _key_out(row, KeyUsage(), _since(None))


def _set_enabled(
    provider: str | None, key_id: str, enabled: bool, reason: str | None, uow: UnitOfWork
) -> KeyOut:
    with uow() as session:
        _owned(session, provider, key_id)
        set_enabled(session, key_id, enabled, reason)
        session.expire_all()
        return _one(session, key_id)


def _delete(provider: str | None, key_id: str, uow: UnitOfWork) -> Response:
    with uow() as session:
        _owned(session, provider, key_id)
        delete_key(session, key_id)
    return Response(status_code=204)


# -- /v1/providers/{name}/keys ------------------------------------------------------------
@provider_keys_router.post(
    "",
    status_code=201,
    summary="Store a provider API key (encrypted)",
    response_model=KeyOut,
    responses=documented(409),
)
def create_provider_key(
    name: ProviderName,
    body: ProviderKeyCreate,
    state: State,
    uow: UnitOfWork,
    registry: CurrentRegistry,
    _: AdminCaller,
) -> KeyOut:
    return _create(name, body, state, uow, registry)


@provider_keys_router.get("", summary="The provider's keys, masked, with their usage")
def read_provider_keys(
    name: ProviderName,
    session: ReadSession,
    registry: CurrentRegistry,
    _: AdminCaller,
    since: UsageSince = None,
) -> KeyList:
    if name not in registry.providers:
        raise NotFound(f"no provider {name!r}", code="provider_not_found")
    return _listing(session, list_keys(session, name), since)


@provider_keys_router.post(
    "/{key_id}/rotate",
    summary="Replace a key's secret (same id, label and limits; enabled again)",
    response_model=KeyOut,
)
def rotate_provider_key(
    name: ProviderName,
    key_id: KeyId,
    body: KeyRotate,
    state: State,
    uow: UnitOfWork,
    _: AdminCaller,
) -> KeyOut:
    box = _box(state)
    with uow() as session:
        _owned(session, name, key_id)
        rotate_key(session, box, key_id, body.secret.get_secret_value())
        return _one(session, key_id)


@provider_keys_router.post("/{key_id}/disable", summary="Stop using a key", response_model=KeyOut)
def disable_provider_key(
    name: ProviderName,
    key_id: KeyId,
    uow: UnitOfWork,
    _: AdminCaller,
    body: DisableBody | None = None,
) -> KeyOut:
    return _set_enabled(name, key_id, False, (body or DisableBody()).reason, uow)


@provider_keys_router.post(
    "/{key_id}/enable", summary="Use a disabled key again", response_model=KeyOut
)
def enable_provider_key(
    name: ProviderName, key_id: KeyId, uow: UnitOfWork, _: AdminCaller
) -> KeyOut:
    return _set_enabled(name, key_id, True, None, uow)


@provider_keys_router.delete("/{key_id}", status_code=204, summary="Forget a stored key")
def delete_provider_key(
    name: ProviderName, key_id: KeyId, uow: UnitOfWork, _: AdminCaller
) -> Response:
    return _delete(name, key_id, uow)


# -- /v1/keys (alias) ---------------------------------------------------------------------
@keys_router.post(
    "",
    status_code=201,
    summary="Store a provider API key (alias of POST /v1/providers/{name}/keys)",
    response_model=KeyOut,
    responses=documented(409),
)
def create_key(
    body: KeyCreate, state: State, uow: UnitOfWork, registry: CurrentRegistry, _: AdminCaller
) -> KeyOut:
    return _create(body.provider, body, state, uow, registry)


@keys_router.get("", summary="Stored keys of every provider, masked, with their usage")
def read_keys(
    session: ReadSession,
    _: AdminCaller,
    provider: Annotated[str | None, Query(max_length=64, pattern=PROVIDER_NAME_PATTERN)] = None,
    since: UsageSince = None,
) -> KeyList:
    return _listing(session, list_keys(session, provider), since)


@keys_router.post("/{key_id}/enable", summary="Use a disabled key again", response_model=KeyOut)
def enable_key(key_id: KeyId, uow: UnitOfWork, _: AdminCaller) -> KeyOut:
    return _set_enabled(None, key_id, True, None, uow)


@keys_router.delete("/{key_id}", status_code=204, summary="Forget a stored key")
def remove_key(key_id: KeyId, uow: UnitOfWork, _: AdminCaller) -> Response:
    return _delete(None, key_id, uow)
