"""The webhook API: endpoints and their secrets, deliveries and redelivery, tenant defaults.

Endpoints and deliveries belong to a tenant: a tenant key sees and changes only its own
(``caller.scope()``); a tenant's default URL is gateway configuration (the admin's).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.api.auth import AdminCaller, CurrentCaller
from app.api.deps import ReadSession, State, UnitOfWork
from app.api.errors import documented
from app.api.state import ApiState
from app.db.tables import TenantRow, WebhookAttemptRow, WebhookEndpointRow, WebhookEventRow
from app.errors import Conflict, NotFound
from app.jobs.schemas import Strict
from app.webhooks import receivers
from app.webhooks.ssrf import MAX_URL_CHARS, Destinations, check

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
tenant_router = APIRouter(prefix="/v1/tenants", tags=["tenants"])

WebhookUrl = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_CHARS)]
EndpointId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_]+$")]
EventId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_]+$")]
DeliveryStatus = Literal["pending", "delivered", "failed", "disabled"]


def adopt(session: Session, state: ApiState, tenant_id: str, url: str | None) -> bool:
    """Check a webhook URL a caller gave (400 ``webhook_url_forbidden``) and make sure the
    tenant has an endpoint, with a secret, for it. True if a webhook applies to what is being
    submitted (this URL or the tenant's default): the jobs' ``notify`` flag."""
    if url is None:
        default = session.scalar(select(TenantRow.webhook_url).where(TenantRow.id == tenant_id))
        return default is not None
    check(url, Destinations.from_settings(state.settings))
    receivers.ensure(session, state.secrets, tenant_id, url)
    return True


class EndpointCreate(Strict):
    url: WebhookUrl


class EndpointOut(BaseModel):
    id: str
    url: str
    secret: str = Field(description="Masked, except in the answer that made or rotated it.")
    enabled: bool
    disabled_reason: str | None
    created_at: datetime


class EndpointList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EndpointOut]


def _endpoint(row: WebhookEndpointRow, secret: str | None = None) -> EndpointOut:
    return EndpointOut(
        id=row.id,
        url=row.url,
        secret=secret or row.secret_hint,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
    )


@router.get("/endpoints", summary="The tenant's webhook endpoints (secrets masked)")
def list_endpoints(caller: CurrentCaller, session: ReadSession) -> EndpointList:
    return EndpointList(data=[_endpoint(r) for r in receivers.listing(session, caller.scope())])


@router.post(
    "/endpoints",
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook URL; the answer carries its secret, shown this once",
    responses=documented(409),
)
def create_endpoint(
    body: EndpointCreate, caller: CurrentCaller, state: State, uow: UnitOfWork
) -> EndpointOut:
    check(body.url, Destinations.from_settings(state.settings))
    with uow() as session:
        issued = receivers.register(session, state.secrets, caller.tenant_id, body.url)
        return _endpoint(issued.endpoint, issued.secret)


@router.post(
    "/endpoints/{endpoint_id}/rotate",
    summary="A new secret for the endpoint (the old one stops working at once)",
)
def rotate_endpoint(
    endpoint_id: EndpointId, caller: CurrentCaller, state: State, uow: UnitOfWork
) -> EndpointOut:
    with uow() as session:
        issued = receivers.rotate(session, state.secrets, endpoint_id, caller.scope())
        return _endpoint(issued.endpoint, issued.secret)


@router.post("/endpoints/{endpoint_id}/enable", summary="Deliver to the endpoint again")
def enable_endpoint(endpoint_id: EndpointId, caller: CurrentCaller, uow: UnitOfWork) -> EndpointOut:
    with uow() as session:
        return _endpoint(receivers.set_enabled(session, endpoint_id, True, None, caller.scope()))


class AttemptOut(BaseModel):
    number: int
    status_code: int | None
    error: str | None
    latency_ms: int
    next_attempt_at: datetime | None
    created_at: datetime


class DeliveryOut(BaseModel):
    id: str = Field(description="The event id, sent as `webhook-id` on every try.")
    type: str
    url: str
    job_id: str | None
    batch_id: str | None
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    attempts: list[AttemptOut]


class DeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DeliveryOut]


def _attempts(session: Session, event_ids: list[str]) -> dict[str, list[AttemptOut]]:
    rows = session.scalars(
        select(WebhookAttemptRow)
        .where(WebhookAttemptRow.event_id.in_(event_ids))
        .order_by(WebhookAttemptRow.event_id, WebhookAttemptRow.number)
    )
    found: dict[str, list[AttemptOut]] = {}
    for r in rows:
        found.setdefault(r.event_id, []).append(
            AttemptOut(
                number=r.number,
                status_code=r.status_code,
                error=r.error,
                latency_ms=r.latency_ms,
                next_attempt_at=r.next_attempt_at,
                created_at=r.created_at,
            )
        )
    return found


def _delivery(row: WebhookEventRow, attempts: list[AttemptOut]) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        type=row.type,
        url=row.url,
        job_id=row.job_id,
        batch_id=row.batch_id,
        status=row.status,
        attempt_count=row.attempt_count,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
        attempts=attempts,
    )


@router.get("/deliveries", summary="Webhook deliveries, newest first, with every try")
def list_deliveries(
    caller: CurrentCaller,
    session: ReadSession,
    job_id: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_]+$")] = None,
    batch_id: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_]+$")] = None,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> DeliveryList:
    query = select(WebhookEventRow)
    scope = caller.scope()
    if scope is not None:
        query = query.where(WebhookEventRow.tenant_id == scope)
    if job_id is not None:
        query = query.where(WebhookEventRow.job_id == job_id)
    if batch_id is not None:
        query = query.where(WebhookEventRow.batch_id == batch_id)
    if status is not None:
        query = query.where(WebhookEventRow.status == status)
    rows = list(session.scalars(query.order_by(WebhookEventRow.created_at.desc()).limit(limit)))
    attempts = _attempts(session, [r.id for r in rows])
    return DeliveryList(data=[_delivery(r, attempts.get(r.id, [])) for r in rows])


@router.post(
    "/deliveries/{event_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send the event again (same id, fresh signature), whatever became of it",
    responses=documented(409),
)
def redeliver(event_id: EventId, caller: CurrentCaller, uow: UnitOfWork) -> DeliveryOut:
    with uow() as session:
        row = session.get(WebhookEventRow, event_id, with_for_update=True)
        scope = caller.scope()
        if row is None or (scope is not None and row.tenant_id != scope):
            raise NotFound(f"no webhook delivery {event_id!r}", code="webhook_delivery_not_found")
        endpoint = receivers.find(session, row.tenant_id, row.url)
        if endpoint is not None and not endpoint.enabled:
            raise Conflict(
                f"endpoint {endpoint.id} is disabled ({endpoint.disabled_reason}); enable it first",
                code="webhook_endpoint_disabled",
            )
        # Due now and not in hand: the next sweep publishes it.
        row.status = "pending"
        row.next_attempt_at = session.scalar(select(func.now()))
        row.published_at = None
        session.flush()
        return _delivery(row, _attempts(session, [row.id]).get(row.id, []))


class TenantWebhook(Strict):
    url: WebhookUrl | None = Field(description="The tenant's default webhook URL; null: none.")


@tenant_router.put(
    "/{tenant_id}/webhook",
    summary="Set a tenant's default webhook URL (for jobs and batches that name none)",
)
def set_tenant_webhook(
    tenant_id: Annotated[str, Path(max_length=64)],
    body: TenantWebhook,
    _: AdminCaller,
    state: State,
    uow: UnitOfWork,
) -> TenantWebhook:
    with uow() as session:
        tenant = session.get(TenantRow, tenant_id)
        if tenant is None:
            raise NotFound(f"no tenant {tenant_id!r}", code="tenant_not_found")
        adopt(session, state, tenant_id, body.url)
        tenant.webhook_url = body.url
    return body
