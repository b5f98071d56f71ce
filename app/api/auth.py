"""Who is calling: a tenant (by its gateway key) or the operator (by the admin key).

Every job, batch, report and webhook belongs to a tenant; a tenant key sees only its own.
The admin key (``SWITCHBOARD_ADMIN_KEY``) may manage the gateway (registry, provider keys,
policies, tenants, budgets) and read across tenants; what it submits belongs to the
``default`` tenant unless it names another with ``X-Switchboard-Tenant``, which also limits
its reads to that tenant.

Keys come as ``Authorization: Bearer <key>`` (what OpenAI's SDKs send) or ``x-api-key``
(what Anthropic's send). A key's owner is cached for ``KEY_CACHE_TTL_S``, so a revoked key
stops working within that time; ``last_used_at`` is written at most once a minute per key.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Annotated

from cachetools import TTLCache
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from app.constants import DEFAULT_TENANT
from app.db.engine import unit_of_work
from app.db.tables import TenantRow
from app.errors import Forbidden, NotFound, Unauthorized
from app.tenants.keys import key_hash, same_secret
from app.tenants.service import KeyOwner, key_owner, touch_key

TENANT_HEADER = "x-switchboard-tenant"
KEY_CACHE_TTL_S = 5.0
TOUCH_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Caller:
    tenant_id: str  # whose new jobs and batches these are
    admin: bool
    chosen: bool = False  # the admin named the tenant with X-Switchboard-Tenant

    def scope(self, tenant_id: str | None = None) -> str | None:
        """The tenant a read is limited to: a tenant's own; for the admin, the one asked for
        (``None``: every tenant)."""
        if not self.admin:
            return self.tenant_id
        if tenant_id is not None:
            return tenant_id
        return self.tenant_id if self.chosen else None


class Gatekeeper:
    """Turns a presented key into a ``Caller``; one per API process."""

    def __init__(self, sessions: sessionmaker[Session], admin_key: str | None) -> None:
        self._sessions = sessions
        self._admin_key = admin_key
        self._owners: TTLCache[str, KeyOwner | None] = TTLCache(10_000, KEY_CACHE_TTL_S)
        self._touched: TTLCache[str, bool] = TTLCache(10_000, TOUCH_EVERY_S)
        self._lock = threading.Lock()

    def caller(self, key: str, tenant: str | None) -> Caller:
        """Who presents ``key`` (reading Postgres if this process has not seen it lately)."""
        if self._is_admin(key):
            if tenant is None:
                return Caller(DEFAULT_TENANT, admin=True)
            self._check_tenant(tenant)
            return Caller(tenant, admin=True, chosen=True)
        owner = self._owner(key)
        caller = _as_caller(owner, tenant)
        assert owner is not None
        self._touch(owner.key_id)
        return caller

    def known_caller(self, key: str, tenant: str | None) -> Caller | None:
        """``caller`` when it needs no I/O — the admin key for its own tenant, or a key whose
        owner is cached and whose use was recorded lately — else ``None``."""
        if self._is_admin(key):
            return Caller(DEFAULT_TENANT, admin=True) if tenant is None else None
        digest = key_hash(key)
        with self._lock:
            if digest not in self._owners:
                return None
            owner = self._owners[digest]
            if owner is not None and owner.key_id not in self._touched:
                return None
        return _as_caller(owner, tenant)

    def _is_admin(self, key: str) -> bool:
        return self._admin_key is not None and same_secret(key, self._admin_key)

    def _owner(self, key: str) -> KeyOwner | None:
        digest = key_hash(key)
        with self._lock:
            if digest in self._owners:
                return self._owners[digest]
        with self._sessions() as session:
            owner = key_owner(session, key)
        with self._lock:
            self._owners[digest] = owner
        return owner

    def _touch(self, key_id: str) -> None:
        with self._lock:
            if key_id in self._touched:
                return
            self._touched[key_id] = True
        with unit_of_work(self._sessions) as session:
            touch_key(session, key_id)

    def _check_tenant(self, tenant: str) -> None:
        with self._sessions() as session:
            if session.get(TenantRow, tenant) is None:
                raise NotFound(f"no tenant {tenant!r}", code="tenant_not_found")


def _as_caller(owner: KeyOwner | None, tenant: str | None) -> Caller:
    """The tenant caller a key's owner makes, or why it may not call."""
    if owner is None:
        raise Unauthorized("this API key is not valid", code="invalid_api_key")
    if not owner.tenant_enabled:
        raise Forbidden(f"tenant {owner.tenant_id!r} is disabled", code="tenant_disabled")
    if tenant is not None and tenant != owner.tenant_id:
        raise Forbidden("only the admin key may act for another tenant", code="tenant_mismatch")
    return Caller(owner.tenant_id, admin=False)


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized(
                "send the key as `Authorization: Bearer <key>`", code="invalid_authorization"
            )
        return value.strip()
    return request.headers.get("x-api-key") or None


async def _caller(request: Request) -> Caller:
    key = presented_key(request)
    if key is None:
        raise Unauthorized(
            "this endpoint needs an API key: `Authorization: Bearer <key>`",
            code="missing_api_key",
        )
    gatekeeper: Gatekeeper = request.app.state.switchboard.gatekeeper
    tenant = request.headers.get(TENANT_HEADER) or None
    known = gatekeeper.known_caller(key, tenant)  # most calls: no thread, no query
    return known if known is not None else await run_in_threadpool(gatekeeper.caller, key, tenant)


async def _admin(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if not caller.admin:
        raise Forbidden("this endpoint needs the admin key", code="admin_required")
    return caller


require_caller = Depends(_caller)
CurrentCaller = Annotated[Caller, Depends(_caller)]
AdminCaller = Annotated[Caller, Depends(_admin)]
