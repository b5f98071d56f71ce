"""The gateway's state, read when the API is scraped: queues, live jobs, breakers.

These are gauges of state, not counts of events, so no process counts them: the API reads
them from Redis and Postgres at scrape time — once per ``ttl_s`` however many scrapers (and
dashboards, which show the same snapshot) ask. A service that does not answer makes its own
gauges absent and ``switchboard_backing_service_up{service}`` 0; the rest is still served.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.api.state import ApiState
from app.constants import PRIORITY_ORDER, provider_queues
from app.jobs import backlog
from app.registry.snapshot import TimedSnapshot
from app.routing.breakers import BreakerState, BreakerStatus, model_target, provider_target
from app.webhooks.outbox import WEBHOOKS_QUEUE

log = logging.getLogger(__name__)

STATE_TTL_S = 2.0
STATEMENT_TIMEOUT_MS = 5000  # a scrape gives up on a Postgres that hangs, well before its own
POSTGRES_DOWN = (OperationalError, InterfaceError, PoolTimeout)


@dataclass(frozen=True, slots=True)
class GatewayState:
    """One reading; a part is None when the service it comes from did not answer."""

    providers: tuple[str, ...]
    queues: dict[str, int] | None  # Celery queue -> messages waiting on it
    delayed: int | None
    breakers: list[BreakerStatus] | None
    live: dict[tuple[str, str, str], int] | None  # (provider, priority, status) -> jobs
    webhooks_pending: int | None

    @property
    def redis_up(self) -> bool:
        return self.queues is not None

    @property
    def postgres_up(self) -> bool:
        return self.live is not None


def queue_of(queue: str) -> tuple[str, str]:
    """(provider, priority) of a provider queue; ("", "") for another queue."""
    provider, _, priority = queue.rpartition(".")
    if provider and priority in PRIORITY_ORDER:
        return provider, priority
    return "", ""


class StateReader:
    """Reads ``GatewayState`` through one API process's connections, at most every ttl_s."""

    def __init__(self, state: ApiState, ttl_s: float = STATE_TTL_S) -> None:
        self._state = state
        self._providers: tuple[str, ...] = ()
        self._targets: tuple[str, ...] = ()
        self._snapshot = TimedSnapshot(self._read, ttl_s=ttl_s)

    def get(self) -> GatewayState:
        return self._snapshot.get()

    def _read(self) -> GatewayState:
        s = self._state
        live: dict[tuple[str, str, str], int] | None = None
        pending: int | None = None
        try:
            self._learn_registry()
            with s.engine.begin() as conn:
                conn.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
                live = backlog.live_jobs(conn)
                pending = backlog.pending_webhook_events(conn)
        except POSTGRES_DOWN as exc:
            log.warning("metrics: Postgres unavailable (%s)", type(exc).__name__)
            live = pending = None
        queues: dict[str, int] | None = None
        delayed: int | None = None
        breakers: list[BreakerStatus] | None = None
        names = [q for p in self._providers for q in provider_queues(p)] + [WEBHOOKS_QUEUE]
        try:
            queues = backlog.queue_messages(s.redis, names)
            delayed = backlog.delayed_jobs(s.redis)
            if s.breakers is not None:
                breakers = s.breakers.statuses(self._targets)
        except RedisError as exc:
            log.warning("metrics: Redis unavailable (%s)", type(exc).__name__)
            queues = delayed = breakers = None
        return GatewayState(self._providers, queues, delayed, breakers, live, pending)

    def _learn_registry(self) -> None:
        """The providers and breaker targets to report; the last ones known if Postgres is
        down (the registry snapshot then cannot reload)."""
        registry = self._state.registry.get()
        self._providers = tuple(sorted(registry.providers))
        enabled = [m for m in registry.models.values() if m.enabled]
        self._targets = tuple(
            sorted(
                {provider_target(p.name) for p in registry.providers.values() if p.enabled}
                | {model_target(m.id) for m in enabled}
            )
        )


class StateCollector(Collector):
    """The state gauges, for a ``CollectorRegistry``; nothing until a reader is attached."""

    def __init__(self) -> None:
        self.reader: StateReader | None = None

    def describe(self) -> Iterable[Metric]:
        return []  # not known without reading: never read at registration

    def collect(self) -> Iterator[Metric]:
        if self.reader is None:
            return
        state = self.reader.get()
        up = GaugeMetricFamily(
            "switchboard_backing_service_up",
            "1 if the service answered the API's last state reading, else 0.",
            labels=("service",),
        )
        up.add_metric(("postgres",), float(state.postgres_up))
        up.add_metric(("redis",), float(state.redis_up))
        yield up
        if state.queues is not None:
            yield from _redis_gauges(state)
        if state.live is not None:
            yield from _postgres_gauges(state, state.live)


def _redis_gauges(state: GatewayState) -> Iterator[Metric]:
    assert state.queues is not None
    queues = GaugeMetricFamily(
        "switchboard_queue_messages",
        "Messages waiting on a Celery queue (<provider>.<priority>, or the webhooks queue).",
        labels=("queue", "provider", "priority"),
    )
    for queue, count in sorted(state.queues.items()):
        queues.add_metric((queue, *queue_of(queue)), count)
    yield queues
    if state.delayed is not None:
        yield GaugeMetricFamily(
            "switchboard_delayed_jobs",
            "Waiting jobs in the timer index that puts them back on their queue when due.",
            value=state.delayed,
        )
    if state.breakers is not None:
        breakers = GaugeMetricFamily(
            "switchboard_breaker_state",
            "1 for the state each circuit breaker is in (closed, half_open, open), else 0.",
            labels=("target", "state"),
        )
        for status in state.breakers:
            for s in BreakerState:
                breakers.add_metric((status.target, s.value), float(status.state is s))
        yield breakers


def _postgres_gauges(
    state: GatewayState, live: dict[tuple[str, str, str], int]
) -> Iterator[Metric]:
    jobs = GaugeMetricFamily(
        "switchboard_live_jobs",
        "Jobs not yet finished (queued, waiting, running), from Postgres.",
        labels=("provider", "priority", "status"),
    )
    keys = {
        (p, pr.value, st)
        for p in state.providers
        for pr in PRIORITY_ORDER
        for st in backlog.LIVE_STATUSES
    }
    for key in sorted(keys | set(live)):
        jobs.add_metric(key, live.get(key, 0))
    yield jobs
    if state.webhooks_pending is not None:
        yield GaugeMetricFamily(
            "switchboard_webhook_events_pending",
            "Webhook events still to deliver (due now or waiting for a retry).",
            value=state.webhooks_pending,
        )
