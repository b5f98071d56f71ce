"""Routing policies over HTTP: ``/v1/policies`` (admin writes, anyone reads) and a dry run.

``PUT /v1/policies/{name}`` replaces the whole policy, and creates it if absent (201 then,
200 on a replace), so deploying a policy file is one idempotent call.
"""

from __future__ import annotations

import random
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from app.api.auth import AdminCaller, CurrentCaller
from app.api.deps import CurrentRegistry, ReadSession, State, UnitOfWork
from app.api.errors import documented
from app.errors import InvalidInput, NotFound
from app.ledger.cost import format_usd
from app.policies.rules import Policy, resolve
from app.policies.schemas import (
    PolicyCreate,
    PolicyList,
    PolicyOut,
    PolicyReplace,
    PolicyRouteOut,
    ResolveRequest,
)
from app.policies.store import (
    PolicyCache,
    create_policy,
    delete_policy,
    get_policy,
    list_policies,
    load_policies,
    policy_out,
    replace_policy,
)

router = APIRouter(prefix="/v1/policies", tags=["policies"])

NamePath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="The policy's name (its id).",
    ),
]
POLICY_REFRESH_S = 5.0
_cache_lock = threading.Lock()


async def policy_cache(request: Request, state: State) -> PolicyCache:
    """This process's snapshot of the policies, made on first use and kept on the app (the
    lead may move it into ``ApiState``); writes here invalidate it at once, other processes
    see a change within ``POLICY_REFRESH_S``."""
    cache: PolicyCache | None = getattr(request.app.state, "policies", None)
    if cache is None:
        with _cache_lock:
            cache = getattr(request.app.state, "policies", None)
            if cache is None:

                def load() -> list[Policy]:
                    with state.sessions() as session:
                        return load_policies(session)

                cache = PolicyCache(load, ttl_s=POLICY_REFRESH_S)
                request.app.state.policies = cache
    return cache


Policies = Annotated[PolicyCache, Depends(policy_cache)]


@router.post(
    "",
    status_code=201,
    summary="Create a routing policy",
    response_model=PolicyOut,
    responses=documented(409),
)
def create(
    body: PolicyCreate,
    _: AdminCaller,
    uow: UnitOfWork,
    registry: CurrentRegistry,
    cache: Policies,
) -> PolicyOut:
    with uow() as session:
        out = policy_out(create_policy(session, body.name, body, registry))
    cache.invalidate()
    return out


@router.get("", summary="Routing policies, highest priority first")
def read_all(_: CurrentCaller, session: ReadSession) -> PolicyList:
    return PolicyList(data=[policy_out(row) for row in list_policies(session)])


@router.get("/{name}", summary="One routing policy", response_model=PolicyOut)
def read_one(name: NamePath, _: CurrentCaller, session: ReadSession) -> PolicyOut:
    return policy_out(get_policy(session, name))


@router.put(
    "/{name}",
    summary="Replace a routing policy whole (or create it: 201)",
    response_model=PolicyOut,
    responses={201: {"model": PolicyOut, "description": "Created"}},
)
def replace(
    name: NamePath,
    body: PolicyReplace,
    _: AdminCaller,
    uow: UnitOfWork,
    registry: CurrentRegistry,
    cache: Policies,
    response: Response,
) -> PolicyOut:
    if body.name is not None and body.name != name:
        raise InvalidInput(
            f"the body names policy {body.name!r} but the path {name!r}; rename by creating "
            "the new one and deleting the old",
            code="name_mismatch",
            param="name",
        )
    with uow() as session:
        row, created = replace_policy(session, name, body, registry)
        out = policy_out(row)
    cache.invalidate()
    response.status_code = 201 if created else 200
    return out


@router.delete("/{name}", status_code=204, summary="Delete a routing policy")
def remove(name: NamePath, _: AdminCaller, uow: UnitOfWork, cache: Policies) -> Response:
    with uow() as session:
        delete_policy(session, name)
    cache.invalidate()
    return Response(status_code=204)


@router.post(
    "/{name}/resolve",
    summary="Dry run: the models a job with this metadata would be routed to",
    response_model=PolicyRouteOut,
)
def dry_run(
    name: NamePath, body: ResolveRequest, caller: CurrentCaller, cache: Policies
) -> PolicyRouteOut:
    tenant_id = caller.scope(body.tenant_id) or caller.tenant_id
    route = resolve(
        cache.get(),
        name=name,
        request_metadata=body.metadata,
        tags=body.tags,
        tenant_id=tenant_id,
        rand=random.Random(body.seed),
    )
    if route is None:  # not reached: a named policy answers with a route or raises
        raise NotFound(f"no routing policy {name!r}", code="policy_not_found")
    return PolicyRouteOut(
        policy=route.policy,
        rule=route.rule_index,
        models=list(route.models),
        strategy=route.strategy,
        max_cost_usd=format_usd(route.max_cost_usd),
        reason=route.reason,
    )
