"""Creating tenants and their gateway keys, and finding who a key belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.db.tables import GatewayKeyRow, TenantRow, tenants
from app.errors import Conflict, NotFound
from app.ids import new_id
from app.tenants.keys import key_hash, new_gateway_key


@dataclass(frozen=True, slots=True)
class KeyOwner:
    key_id: str
    tenant_id: str
    tenant_enabled: bool


def create_tenant(
    session: Session, tenant_id: str, name: str, webhook_url: str | None = None
) -> TenantRow:
    stmt = (
        insert(tenants)
        .values(id=tenant_id, name=name, webhook_url=webhook_url)
        .on_conflict_do_nothing(index_elements=[tenants.c.id])
        .returning(tenants.c.id)
    )
    if session.execute(stmt).scalar_one_or_none() is None:
        raise Conflict(f"tenant {tenant_id!r} exists", code="tenant_exists", param="id")
    return get_tenant(session, tenant_id)


def get_tenant(session: Session, tenant_id: str) -> TenantRow:
    row = session.get(TenantRow, tenant_id)
    if row is None:
        raise NotFound(f"no tenant {tenant_id!r}", code="tenant_not_found")
    return row


def list_tenants(session: Session) -> list[TenantRow]:
    return list(session.scalars(select(TenantRow).order_by(TenantRow.id)))


def issue_key(session: Session, tenant_id: str, label: str) -> tuple[GatewayKeyRow, str]:
    """A new key for the tenant: the row, and the key itself (shown once, never stored)."""
    get_tenant(session, tenant_id)
    plaintext = new_gateway_key()
    row = GatewayKeyRow(
        id=new_id("gk"),
        tenant_id=tenant_id,
        label=label,
        key_hash=key_hash(plaintext),
        last_four=plaintext[-4:],
    )
    session.add(row)
    session.flush()
    return row, plaintext


def list_keys(session: Session, tenant_id: str) -> list[GatewayKeyRow]:
    get_tenant(session, tenant_id)
    query = select(GatewayKeyRow).where(GatewayKeyRow.tenant_id == tenant_id)
    return list(session.scalars(query.order_by(GatewayKeyRow.created_at)))


def revoke_key(session: Session, tenant_id: str, key_id: str) -> GatewayKeyRow:
    row = session.get(GatewayKeyRow, key_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"no key {key_id!r} for tenant {tenant_id!r}", code="key_not_found")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        session.flush()
    return row


def key_owner(session: Session, plaintext: str) -> KeyOwner | None:
    """Whose live key this is, if anyone's."""
    row = session.execute(
        select(GatewayKeyRow.id, GatewayKeyRow.tenant_id, TenantRow.enabled)
        .join(TenantRow, TenantRow.id == GatewayKeyRow.tenant_id)
        .where(GatewayKeyRow.key_hash == key_hash(plaintext), GatewayKeyRow.revoked_at.is_(None))
    ).one_or_none()
    return None if row is None else KeyOwner(row[0], row[1], row[2])


def touch_key(session: Session, key_id: str) -> None:
    session.execute(
        update(GatewayKeyRow)
        .where(GatewayKeyRow.id == key_id)
        .values(last_used_at=datetime.now(UTC))
    )
