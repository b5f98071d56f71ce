"""``/v1/tenants``: tenants and their gateway keys (admin), and a tenant's view of itself."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from app.api.auth import AdminCaller, CurrentCaller
from app.api.deps import ReadSession, UnitOfWork
from app.api.errors import documented
from app.db.tables import GatewayKeyRow, TenantRow
from app.errors import NotFound
from app.jobs.schemas import StorableRequest, Strict
from app.tenants.service import (
    create_tenant,
    get_tenant,
    issue_key,
    list_keys,
    list_tenants,
    revoke_key,
)

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])

TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
TenantSlug = Annotated[str, Field(min_length=1, max_length=64, pattern=TENANT_PATTERN)]
TenantId = Annotated[str, Path(min_length=1, max_length=64, pattern=TENANT_PATTERN)]
KeyId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_]+$")]


class TenantCreate(StorableRequest):
    id: TenantSlug
    name: Annotated[str, Field(min_length=1, max_length=200)]


class TenantUpdate(StorableRequest):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    enabled: bool | None = None


class TenantOut(BaseModel):
    id: str
    object: Literal["tenant"] = "tenant"
    name: str
    enabled: bool
    created_at: datetime


class TenantList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TenantOut]


class KeyCreate(Strict):
    label: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\x20-\x7e]+$")]


class GatewayKeyOut(BaseModel):
    id: str
    object: Literal["gateway_key"] = "gateway_key"
    tenant_id: str
    label: str
    last_four: str
    status: Literal["active", "revoked"]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class GatewayKeyCreated(GatewayKeyOut):
    key: str = Field(description="The key itself: shown now and never again.")


class GatewayKeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[GatewayKeyOut]


def _tenant_out(row: TenantRow) -> TenantOut:
    return TenantOut(id=row.id, name=row.name, enabled=row.enabled, created_at=row.created_at)


def _key_fields(row: GatewayKeyRow) -> dict[str, object]:
    return {
        "id": row.id,
        "tenant_id": row.tenant_id,
        "label": row.label,
        "last_four": row.last_four,
        "status": "revoked" if row.revoked_at else "active",
        "created_at": row.created_at,
        "last_used_at": row.last_used_at,
        "revoked_at": row.revoked_at,
    }


@router.post("", status_code=201, summary="Create a tenant", responses=documented(409))
def post_tenant(body: TenantCreate, _: AdminCaller, uow: UnitOfWork) -> TenantOut:
    with uow() as session:
        return _tenant_out(create_tenant(session, body.id, body.name))


@router.get("", summary="Every tenant")
def get_tenants(_: AdminCaller, session: ReadSession) -> TenantList:
    return TenantList(data=[_tenant_out(t) for t in list_tenants(session)])


@router.get("/{tenant_id}", summary="A tenant (the admin, or the tenant itself)")
def get_one(tenant_id: TenantId, caller: CurrentCaller, session: ReadSession) -> TenantOut:
    scope = caller.scope(tenant_id)
    if scope != tenant_id:
        raise NotFound(f"no tenant {tenant_id!r}", code="tenant_not_found")
    return _tenant_out(get_tenant(session, tenant_id))


@router.patch("/{tenant_id}", summary="Rename, disable or enable a tenant")
def patch_tenant(
    tenant_id: TenantId, body: TenantUpdate, _: AdminCaller, uow: UnitOfWork
) -> TenantOut:
    with uow() as session:
        row = get_tenant(session, tenant_id)
        if body.name is not None:
            row.name = body.name
        if body.enabled is not None:
            row.enabled = body.enabled
        session.flush()
        return _tenant_out(row)


@router.post("/{tenant_id}/keys", status_code=201, summary="Issue a gateway key to a tenant")
def post_key(
    tenant_id: TenantId, body: KeyCreate, _: AdminCaller, uow: UnitOfWork
) -> GatewayKeyCreated:
    with uow() as session:
        row, plaintext = issue_key(session, tenant_id, body.label)
        session.refresh(row)
        return GatewayKeyCreated(key=plaintext, **_key_fields(row))


@router.get("/{tenant_id}/keys", summary="A tenant's gateway keys (never the keys themselves)")
def get_keys(tenant_id: TenantId, _: AdminCaller, session: ReadSession) -> GatewayKeyList:
    return GatewayKeyList(
        data=[GatewayKeyOut(**_key_fields(k)) for k in list_keys(session, tenant_id)]
    )


@router.delete("/{tenant_id}/keys/{key_id}", status_code=204, summary="Revoke a gateway key")
def delete_key(tenant_id: TenantId, key_id: KeyId, _: AdminCaller, uow: UnitOfWork) -> Response:
    with uow() as session:
        revoke_key(session, tenant_id, key_id)
    return Response(status_code=204)
