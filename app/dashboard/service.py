"""One dashboard snapshot: the gateway's state, the last hour, the day's spend, failures.

Assembled from what exists: queues, live jobs and breakers from the API's state reading (the
one its ``/metrics`` serves, ``app.metrics.state``), volume, success and latency from the
stats report, spend from the cost report (both ``app.ledger``: rollups plus the raw tail), the
minute series and failures from ``app.ledger.recent``. A snapshot is kept for ``ttl_s`` per
tenant scope, so any number of open pages costs one reading per few seconds.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

from cachetools import TTLCache
from sqlalchemy.orm import Session

from app.constants import PRIORITY_ORDER
from app.dashboard.schemas import (
    BreakerOut,
    DashboardOut,
    FailureOut,
    LastHourOut,
    MinuteOut,
    QueueOut,
    ServicesOut,
    SpendLineOut,
    SpendOut,
    ThroughputOut,
)
from app.ledger.cost import format_usd
from app.ledger.recent import latest_failures, per_minute
from app.ledger.spend import CostGroup, CostLine, cost_breakdown
from app.ledger.stats import job_stats
from app.ledger.timeframe import Period, Timeframe, plan
from app.metrics.state import GatewayState
from app.routing.breakers import BreakerState
from app.webhooks.outbox import WEBHOOKS_QUEUE

SNAPSHOT_TTL_S = 2.0
SPEND_LINES = 12  # the dearest models; the rest are summed as "other"
OTHER = "other"


def dashboard(session: Session, gateway: GatewayState, *, tenant_id: str | None) -> DashboardOut:
    """Everything the page draws, read now."""
    now = datetime.now(UTC)
    hour = Timeframe.resolve(start=None, end=None, period=Period.HOUR, now=now)
    stats = job_stats(session, plan(session, hour), tenant_id=tenant_id, group=None).overall
    day = Timeframe.resolve(start=None, end=None, period=Period.DAY, now=now)
    total, lines = cost_breakdown(session, day, tenant_id=tenant_id, group=CostGroup.MODEL)
    minutes = per_minute(session, tenant_id=tenant_id)
    queues = gateway.queues or {}
    return DashboardOut(
        generated_at=now,
        tenant=tenant_id,
        services=ServicesOut(postgres=gateway.postgres_up, redis=gateway.redis_up),
        queues=_queues(gateway),
        webhook_messages=queues.get(WEBHOOKS_QUEUE) if gateway.redis_up else None,
        webhook_events_pending=gateway.webhooks_pending,
        delayed_jobs=gateway.delayed,
        throughput=ThroughputOut(
            per_minute=[
                MinuteOut(
                    minute=m.minute, succeeded=m.succeeded, failed=m.failed, cancelled=m.cancelled
                )
                for m in minutes
            ],
            jobs_per_minute=round(sum(m.jobs for m in minutes) / max(len(minutes), 1), 2),
        ),
        last_hour=LastHourOut(
            jobs=stats.jobs,
            succeeded=stats.by_status.get("succeeded", 0),
            failed=stats.by_status.get("failed", 0),
            cancelled=stats.by_status.get("cancelled", 0),
            success_rate=stats.success_rate,
            latency_p50_ms=stats.percentile(0.5),
            latency_p95_ms=stats.percentile(0.95),
            cost_usd=format_usd(stats.cost_usd) or "0",
        ),
        spend=SpendOut(total_cost_usd=format_usd(total) or "0", by_model=_spend(lines)),
        failures=[
            FailureOut(
                job_id=f.job_id,
                model=f.model,
                provider=f.provider,
                error_class=f.error_class,
                message=f.message,
                finished_at=f.finished_at,
            )
            for f in latest_failures(session, tenant_id=tenant_id)
        ],
        breakers=[
            BreakerOut(
                target=b.target,
                state=b.state,
                consecutive_failures=b.consecutive_failures,
                open_until=b.open_until,
                last_failure=b.last_failure,
                forced=b.forced,
            )
            for b in gateway.breakers or []
            if b.state is not BreakerState.CLOSED or b.consecutive_failures > 0
        ],
    )


def _queues(gateway: GatewayState) -> list[QueueOut]:
    """Every provider queue, whether or not Redis or Postgres answered."""
    out = []
    for provider in gateway.providers:
        for priority in PRIORITY_ORDER:
            queue = f"{provider}.{priority.value}"

            def live(status: str, p: str = provider, pr: str = priority.value) -> int | None:
                return None if gateway.live is None else gateway.live.get((p, pr, status), 0)

            messages = None if gateway.queues is None else gateway.queues.get(queue, 0)
            out.append(
                QueueOut(
                    queue=queue,
                    provider=provider,
                    priority=priority.value,
                    messages=messages,
                    queued=live("queued"),
                    waiting=live("waiting"),
                    running=live("running"),
                )
            )
    return out


def _spend(lines: list[CostLine]) -> list[SpendLineOut]:
    shown = [
        SpendLineOut(
            model=line.key or "(none)",
            cost_usd=format_usd(line.cost_usd) or "0",
            percent=line.percent,
            attempts=line.attempts,
        )
        for line in lines[:SPEND_LINES]
    ]
    rest = lines[SPEND_LINES:]
    if rest:
        shown.append(
            SpendLineOut(
                model=OTHER,
                cost_usd=format_usd(sum((line.cost_usd for line in rest), start=Decimal(0))) or "0",
                percent=round(sum(line.percent for line in rest), 2),
                attempts=sum(line.attempts for line in rest),
            )
        )
    return shown


class Snapshots:
    """The latest snapshot per tenant scope, for ``ttl_s``; one API process's."""

    def __init__(self, ttl_s: float = SNAPSHOT_TTL_S) -> None:
        self._cache: TTLCache[str | None, DashboardOut] = TTLCache(64, ttl_s, timer=time.monotonic)
        self._lock = threading.Lock()

    def get(self, scope: str | None) -> DashboardOut | None:
        with self._lock:
            return self._cache.get(scope)

    def put(self, scope: str | None, snapshot: DashboardOut) -> None:
        with self._lock:
            self._cache[scope] = snapshot
