"""Who is calling: a tenant (by its gateway key) or the operator (by the admin key).

Every job, batch, report and webhook belongs to a tenant; a tenant key sees only its own.
The admin key may manage the gateway (registry, provider keys, policies, tenants, budgets)
and read across tenants; what it submits belongs to the ``default`` tenant unless it names
another with ``X-Switchboard-Tenant``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.errors import Forbidden

DEFAULT_TENANT = "default"


@dataclass(frozen=True, slots=True)
class Caller:
    tenant_id: str
    admin: bool

    def scope(self, tenant_id: str | None = None) -> str | None:
        """The tenant a read is limited to: a tenant's own; for the admin, the one asked for
        (``None``: every tenant)."""
        return tenant_id if self.admin else self.tenant_id


def _caller(request: Request) -> Caller:
    return Caller(tenant_id=DEFAULT_TENANT, admin=True)


def _admin(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if not caller.admin:
        raise Forbidden("this endpoint needs the admin key", code="admin_required")
    return caller


CurrentCaller = Annotated[Caller, Depends(_caller)]
AdminCaller = Annotated[Caller, Depends(_admin)]
