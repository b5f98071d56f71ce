"""Delivering one event: claim it, sign it, send it to the checked address, record the try.

What the receiver's answer means:

- 2xx: delivered.
- 410 Gone: the receiver wants no more; its endpoint is disabled (reason recorded) and none of
  its events is sent again until it is re-enabled.
- 429 / 503 with ``retry-after`` (seconds or an HTTP date): tried again then (at most a day).
- anything else, a timeout or a network error: tried again after an exponential backoff with
  full jitter, up to ``max_attempts`` tries; then the event is ``failed``.

A delivery holds the event's lease while it sends, so a duplicate message (the sweep's, a
redelivery's) finds it in hand and does nothing.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from sqlalchemy import Engine

from app.config import Settings
from app.db.engine import make_sessionmaker, unit_of_work
from app.db.raw import autocommit
from app.registry.secrets import SecretBox
from app.webhooks import receivers
from app.webhooks.signing import sign
from app.webhooks.ssrf import Destinations, WebhookUrlForbidden, check

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 4096
MAX_RETRY_AFTER_S = 24 * 3600.0
USER_AGENT = "Switchboard-Webhooks/1"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float = 5.0
    factor: float = 4.0
    cap_s: float = 3600.0
    max_attempts: int = 8

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.webhook_retry_base_s,
            settings.webhook_retry_factor,
            settings.webhook_retry_cap_s,
            settings.webhook_max_attempts,
        )

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """The wait after failed try number ``attempt`` (1-based): the receiver's
        ``retry-after`` when it gave one, else full jitter over the exponential ceiling."""
        if retry_after_s is not None:  # the receiver knows best, within reason
            return min(max(retry_after_s, 0.0), MAX_RETRY_AFTER_S)
        ceiling = min(self.cap_s, self.base_s * self.factor ** (attempt - 1))
        return random.uniform(0, ceiling)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int | None
    error: str | None
    latency_ms: int
    retry_after_s: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def send(
    client: httpx.Client,
    url: str,
    allowed: Destinations,
    headers: dict[str, str],
    body: bytes,
    total_s: float = 10.0,
) -> Answer:
    """POST ``body`` to ``url``'s checked address (re-resolved and re-checked now), reading at
    most a few KB of the answer within ``total_s`` and following no redirect (a 3xx is a
    failed try: a redirect could lead anywhere, past the address check)."""
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        target = check(url, allowed)
    except WebhookUrlForbidden as exc:
        return Answer(None, f"refused: {exc.message}", elapsed())
    request = client.build_request(
        "POST",
        target.pinned_url(url),
        content=body,
        headers={**headers, "host": target.host_header},
        extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
    )
    try:
        response = client.send(request, stream=True, follow_redirects=False)
        try:
            read = 0
            for chunk in response.iter_raw():
                read += len(chunk)
                if read >= MAX_RESPONSE_BYTES or time.perf_counter() - started > total_s:
                    break
        finally:
            response.close()
    except httpx.HTTPError as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}"[:500], elapsed())
    after = None
    if response.status_code in (429, 503):
        after = retry_after(response.headers.get("retry-after"))
    return Answer(response.status_code, None, elapsed(), after)


def webhook_client(settings: Settings) -> httpx.Client:
    timeout = httpx.Timeout(settings.webhook_timeout_s, connect=settings.webhook_connect_timeout_s)
    return httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        headers={"user-agent": USER_AGENT, "content-type": "application/json"},
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        trust_env=False,
    )


_CLAIM = """
UPDATE webhook_events SET lease_until = now() + make_interval(secs => %(lease_s)s),
    attempt_count = attempt_count + 1
WHERE id = %(id)s AND status = 'pending' AND next_attempt_at <= now()
    AND (lease_until IS NULL OR lease_until < now())
RETURNING tenant_id, url, payload, attempt_count"""

_ATTEMPT = """
INSERT INTO webhook_attempts (event_id, endpoint_id, number, status_code, error, latency_ms,
    next_attempt_at)
VALUES (%(id)s, %(endpoint_id)s, %(number)s, %(status_code)s, %(error)s, %(latency_ms)s,
    %(next_attempt_at)s)
ON CONFLICT (event_id, number) DO NOTHING"""

_SETTLE = """
UPDATE webhook_events SET status = %(status)s, lease_until = NULL,
    next_attempt_at = %(next_attempt_at)s, published_at = NULL,
    delivered_at = CASE WHEN %(status)s = 'delivered' THEN now() ELSE delivered_at END
WHERE id = %(id)s"""

_DISABLE = """
UPDATE webhook_endpoints SET enabled = false, disabled_reason = %(reason)s, disabled_at = now()
WHERE id = %(endpoint_id)s"""


@dataclass
class Deliverer:
    engine: Engine
    box: SecretBox | None
    client: httpx.Client
    allowed: Destinations
    policy: RetryPolicy
    lease_s: float = 60.0
    total_s: float = 10.0
    # Hears each recorded try: (the event's new status, the try's number, its seconds).
    on_try: Callable[[str, int, float], None] = field(default=lambda status, number, s: None)

    def __post_init__(self) -> None:
        self._sessions = make_sessionmaker(self.engine)

    def deliver(self, event_id: str) -> str | None:
        """Try ``event_id`` once if it is due and not in hand; its new status, or None."""
        with autocommit(self.engine) as conn:
            row = conn.execute(_CLAIM, {"id": event_id, "lease_s": self.lease_s}).fetchone()
        if row is None:
            return None
        tenant_id, url, payload, number = row
        with unit_of_work(self._sessions) as session:
            endpoint = receivers.ensure(session, self.box, tenant_id, url)
            endpoint_id, enabled = endpoint.id, endpoint.enabled
            reason = endpoint.disabled_reason
            secret = self.box.open(endpoint.secret_ciphertext) if self.box else None
        if not enabled or secret is None:
            answer = Answer(None, f"endpoint disabled: {reason or 'no secret key'}", 0)
            return self._settle(event_id, endpoint_id, number, answer, "disabled")
        body = orjson.dumps(payload)
        timestamp = int(time.time())
        headers = {
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, event_id, timestamp, body),
        }
        answer = send(self.client, url, self.allowed, headers, body, self.total_s)
        if answer.delivered:
            status = "delivered"
        elif answer.status_code == 410:
            status = "disabled"
            with autocommit(self.engine) as conn:
                conn.execute(
                    _DISABLE,
                    {"endpoint_id": endpoint_id, "reason": "the receiver answered 410 Gone"},
                )
            log.warning("webhook endpoint %s answered 410: disabled", endpoint_id)
        elif number >= self.policy.max_attempts:
            status = "failed"
        else:
            status = "pending"
        return self._settle(event_id, endpoint_id, number, answer, status)

    def _settle(
        self, event_id: str, endpoint_id: str, number: int, answer: Answer, status: str
    ) -> str:
        next_at = None
        if status == "pending":
            delay = self.policy.delay_s(number, answer.retry_after_s)
            next_at = datetime.now(UTC) + timedelta(seconds=delay)
        params: dict[str, Any] = {
            "id": event_id,
            "endpoint_id": endpoint_id,
            "number": number,
            "status_code": answer.status_code,
            "error": answer.error,
            "latency_ms": answer.latency_ms,
            "next_attempt_at": next_at,
            "status": status,
        }
        with autocommit(self.engine) as conn, conn.transaction():
            conn.execute(_ATTEMPT, params)
            conn.execute(_SETTLE, params)
        self.on_try(status, number, answer.latency_ms / 1000)
        return status
