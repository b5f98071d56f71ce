"""Webhook endpoints: each URL a tenant uses gets its own signing secret, sealed at rest.

An endpoint is made when a tenant registers a URL, or on first use of one (a job's, a
batch's or the tenant's default ``webhook_url``). Its secret is shown once, when it is made
through ``POST /v1/webhooks/endpoints`` or rotated; an endpoint made on first use is rotated
to learn its secret (rotating an endpoint whose secret nobody knew loses nothing).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.db.tables import WebhookEndpointRow, webhook_endpoints
from app.errors import Conflict, NotFound, Unavailable
from app.registry.secrets import SecretBox
from app.webhooks.signing import new_secret, secret_hint


@dataclass(frozen=True, slots=True)
class Issued:
    endpoint: WebhookEndpointRow
    secret: str


def _require_box(box: SecretBox | None) -> SecretBox:
    if box is None:
        raise Unavailable(
            "webhook secrets need SWITCHBOARD_SECRET_KEY to be stored", code="no_secret_key"
        )
    return box


def new_endpoint_id() -> str:
    return "whe_" + secrets.token_hex(8)


def ensure(session: Session, box: SecretBox | None, tenant_id: str, url: str) -> WebhookEndpointRow:
    """The tenant's endpoint for ``url``, made (with a fresh secret) if it has none yet."""
    existing = find(session, tenant_id, url)
    if existing is not None:
        return existing
    secret = new_secret()
    stmt = (
        insert(webhook_endpoints)
        .values(
            id=new_endpoint_id(),
            tenant_id=tenant_id,
            url=url,
            secret_ciphertext=_require_box(box).seal(secret),
            secret_hint=secret_hint(secret),
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "url"])
    )
    session.execute(stmt)
    made = find(session, tenant_id, url)
    assert made is not None
    return made


def register(session: Session, box: SecretBox | None, tenant_id: str, url: str) -> Issued:
    if find(session, tenant_id, url) is not None:
        raise Conflict(
            "this URL is already registered; rotate its secret to get a new one",
            code="webhook_endpoint_exists",
            param="url",
        )
    secret = new_secret()
    row = WebhookEndpointRow(
        id=new_endpoint_id(),
        tenant_id=tenant_id,
        url=url,
        secret_ciphertext=_require_box(box).seal(secret),
        secret_hint=secret_hint(secret),
    )
    session.add(row)
    session.flush()
    session.refresh(row)
    return Issued(row, secret)


def rotate(session: Session, box: SecretBox | None, endpoint_id: str, scope: str | None) -> Issued:
    row = get(session, endpoint_id, scope)
    secret = new_secret()
    row.secret_ciphertext = _require_box(box).seal(secret)
    row.secret_hint = secret_hint(secret)
    session.flush()
    return Issued(row, secret)


def set_enabled(
    session: Session, endpoint_id: str, enabled: bool, reason: str | None, scope: str | None
) -> WebhookEndpointRow:
    row = get(session, endpoint_id, scope)
    row.enabled = enabled
    row.disabled_reason = None if enabled else reason
    session.flush()
    return row


def find(session: Session, tenant_id: str, url: str) -> WebhookEndpointRow | None:
    return session.scalars(
        select(WebhookEndpointRow).where(
            WebhookEndpointRow.tenant_id == tenant_id, WebhookEndpointRow.url == url
        )
    ).one_or_none()


def get(session: Session, endpoint_id: str, scope: str | None) -> WebhookEndpointRow:
    row = session.get(WebhookEndpointRow, endpoint_id)
    if row is None or (scope is not None and row.tenant_id != scope):
        raise NotFound(f"no webhook endpoint {endpoint_id!r}", code="webhook_endpoint_not_found")
    return row


def listing(session: Session, scope: str | None) -> list[WebhookEndpointRow]:
    query = select(WebhookEndpointRow).order_by(WebhookEndpointRow.created_at)
    if scope is not None:
        query = query.where(WebhookEndpointRow.tenant_id == scope)
    return list(session.scalars(query))
