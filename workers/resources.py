"""What a worker process makes once and shares between its task threads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.cache.directives import CacheConfig
from app.cache.service import ResponseCache
from app.config import Settings, get_settings
from app.db.engine import make_engine, make_sessionmaker, unit_of_work
from app.embedded import resolve_urls
from app.errors import Unavailable
from app.jobs.admission import Admission
from app.jobs.delayed import DelayedJobs
from app.jobs.reconcile import Reconciler
from app.jobs.runtime import Runtime
from app.metrics.worker import worker_metrics
from app.providers.headers import provider_headers
from app.providers.transport import provider_client
from app.ratelimit import TokenBuckets
from app.registry.keys import KeyRing, ProviderKey, keys_stamp, load_keyring, set_enabled
from app.registry.secrets import secret_box
from app.registry.service import Registry, load_registry, registry_stamp
from app.registry.snapshot import TimedSnapshot
from app.relay.publisher import StreamPublisher
from app.routing.breakers import CircuitBreakers
from app.webhooks.delivery import Deliverer, RetryPolicy, webhook_client
from app.webhooks.outbox import EventPublisher
from app.webhooks.ssrf import Destinations
from workers.celery_app import create_celery_app
from workers.dispatch import CeleryDispatcher

log = logging.getLogger(__name__)


@dataclass
class ProcessResources:
    settings: Settings
    engine: Engine
    redis: redis.Redis
    http: httpx.Client
    runtime: Runtime
    reconciler: Reconciler
    webhooks: Deliverer
    webhook_events: EventPublisher
    webhook_http: httpx.Client

    def close(self) -> None:
        self.http.close()
        self.webhook_http.close()
        self.engine.dispose()
        self.redis.close()


def build_resources(settings: Settings) -> ProcessResources:
    urls = resolve_urls(settings.database_url, settings.redis_url, settings.data_dir)
    if urls is None:
        raise Unavailable("no database: set DATABASE_URL and REDIS_URL, or run `switchboard up`")
    slots = settings.worker_concurrency
    engine = make_engine(
        urls.database_url, pool_size=slots + 4, application_name="switchboard-worker"
    )
    sessions = make_sessionmaker(engine)
    client = redis.Redis.from_url(urls.redis_url, health_check_interval=30)
    http = provider_client(max_connections=slots * 2, timeout=settings.attempt_timeout_s)
    box = secret_box(settings)

    def load() -> Registry:
        with sessions() as session:
            return load_registry(session)

    def stamp(read: Callable[[Session], tuple[object, ...]]) -> Callable[[], tuple[object, ...]]:
        def current() -> tuple[object, ...]:
            with sessions() as session:
                return read(session)

        return current

    registry = TimedSnapshot(load, ttl_s=settings.registry_refresh_s, stamp=stamp(registry_stamp))

    def load_keys() -> KeyRing:
        with sessions() as session:
            return load_keyring(session, registry.get(), box)

    keys = TimedSnapshot(load_keys, ttl_s=settings.registry_refresh_s, stamp=stamp(keys_stamp))

    def disable_key(key: ProviderKey, reason: str) -> None:
        """A key the provider rejected is taken out of service for every worker."""
        if not key.stored:
            log.error("provider %s rejected its %s key: %s", key.provider, key.id, reason)
            return
        with unit_of_work(sessions) as session:
            set_enabled(session, key.id, False, reason[:500])
        keys.invalidate()
        log.error("disabled key %s of %s: %s", key.id, key.provider, reason)

    celery = create_celery_app(urls.redis_url, settings)
    events = EventPublisher(celery)
    metrics = worker_metrics()
    dispatcher = CeleryDispatcher(celery, client)
    cache = ResponseCache(
        engine,
        CacheConfig.from_settings(settings),
        dispatcher,
        publish_events=events.publish,
        tally=metrics.cache_counted,
        on_served=metrics.ended,
    )
    runtime = Runtime(
        engine=engine,
        registry=registry,
        keys=keys,
        http=http,
        # Published through an app on these settings' broker, whatever the process's env says.
        dispatcher=dispatcher,
        publish_events=events.publish,
        delayed=DelayedJobs(client),
        admission=Admission(TokenBuckets(client), max_in_slot_wait_s=settings.max_in_slot_wait_s),
        breakers=CircuitBreakers(client, on_transition=metrics.breaker_moved),
        relay=StreamPublisher(client),
        disable_key=disable_key,
        observer=metrics,
        provider_headers=provider_headers(
            openrouter_site_url=settings.openrouter_site_url,
            openrouter_app_name=settings.openrouter_app_name,
        ),
        cache=cache,
        attempt_timeout_s=settings.attempt_timeout_s,
        lease_margin_s=settings.lease_margin_s,
        max_in_slot_wait_s=settings.max_in_slot_wait_s,
    )
    reconciler = Reconciler(
        engine,
        client,
        runtime.dispatcher,
        grace_s=settings.stale_queued_s,
        observer=metrics,
        cache=cache,
    )
    webhook_http = webhook_client(settings)
    deliverer = Deliverer(
        engine,
        box,
        webhook_http,
        Destinations.from_settings(settings),
        RetryPolicy.from_settings(settings),
        lease_s=settings.webhook_lease_s,
        total_s=settings.webhook_timeout_s,
        on_try=metrics.webhook_tried,
    )
    return ProcessResources(
        settings, engine, client, http, runtime, reconciler, deliverer, events, webhook_http
    )


_lock = threading.Lock()
_resources: ProcessResources | None = None


def resources() -> ProcessResources:
    """This process's resources, built on first use."""
    global _resources
    if _resources is None:
        with _lock:
            if _resources is None:
                _resources = build_resources(get_settings())
    return _resources


def reset_after_fork() -> None:
    """A forked child must not share its parent's sockets."""
    global _resources
    _resources = None
