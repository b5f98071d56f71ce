"""The ASGI app (fixed handle ``app.main:app``) and its factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import redis
from fastapi import FastAPI

from app import __version__
from app.api import errors, health
from app.api.auth import Gatekeeper, require_caller
from app.api.state import ApiState
from app.batches import endpoints as batches
from app.batches.endpoints import BatchCreate
from app.budgets import endpoints as budgets
from app.cache import endpoints as cache
from app.chat import endpoints as chat
from app.completions import endpoints as completions
from app.config import Settings, get_settings
from app.dashboard import endpoints as dashboard
from app.db.engine import make_engine, make_sessionmaker
from app.embedded import resolve_urls
from app.embeddings import endpoints as embeddings
from app.errors import Unavailable
from app.files import endpoints as files
from app.jobs import endpoints as jobs
from app.jobs.service import Dispatcher
from app.ledger import endpoints as usage
from app.metrics import api as metrics_api
from app.orchestration import endpoints as orchestration
from app.policies import endpoints as policies
from app.registry import endpoints as models
from app.registry.secrets import secret_box
from app.registry.service import Registry, RegistryCache, load_registry
from app.relay.subscriber import StreamSubscriber
from app.routing import endpoints as breakers
from app.routing import selection_endpoints as routing
from app.routing.breakers import CircuitBreakers
from app.tenants import endpoints as tenants
from app.tenants.keys import admin_key
from app.webhooks import routes as webhooks

log = logging.getLogger(__name__)

DESCRIPTION = """A durable, multi-provider LLM job gateway.

Submit one job or a batch of up to 50,000 and get ids at once; workers drain them under each
provider's rate limits, fall back between models on classified errors, and record every
attempt, token and cent in Postgres. Errors are `{"error": {"code", "message", "param"?,
"line"?}}`."""


def build_state(settings: Settings, dispatcher: Dispatcher | None = None) -> ApiState:
    urls = resolve_urls(settings.database_url, settings.redis_url, settings.data_dir)
    if urls is None:
        raise Unavailable("no database: set DATABASE_URL and REDIS_URL, or run `switchboard up`")
    engine = make_engine(urls.database_url, pool_size=20, application_name="switchboard-api")
    sessions = make_sessionmaker(engine)
    client = redis.Redis.from_url(urls.redis_url, health_check_interval=30)

    def load() -> Registry:
        with sessions() as session:
            return load_registry(session)

    if dispatcher is None:
        from workers.celery_app import create_celery_app
        from workers.dispatch import CeleryDispatcher

        dispatcher = CeleryDispatcher(create_celery_app(urls.redis_url), client)
    key = admin_key(settings)
    if key is None:
        log.warning("no SWITCHBOARD_ADMIN_KEY: only tenant keys are accepted")
    return ApiState(
        gatekeeper=Gatekeeper(sessions, key),
        settings=settings,
        engine=engine,
        sessions=sessions,
        registry=RegistryCache(load, ttl_s=settings.registry_refresh_s),
        redis=client,
        dispatcher=dispatcher,
        secrets=secret_box(settings),
        breakers=CircuitBreakers(client),
        streams=StreamSubscriber.from_url(urls.redis_url),
    )


def create_app(
    settings: Settings | None = None,
    *,
    state_factory: Callable[[Settings], ApiState] | None = None,
) -> FastAPI:
    """The API; its connections are made at startup, not at import."""
    resolved = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = (state_factory or build_state)(resolved)
        app.state.switchboard = state
        metrics.attach(state)
        try:
            yield
        finally:
            await state.aclose()

    app = FastAPI(
        title="Switchboard",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    errors.install(app)
    metrics = metrics_api.install(app, resolved)  # outermost: it times everything
    common = errors.documented(400, 401, 403, 404, 503)
    app.include_router(health.router)
    app.include_router(dashboard.page_router)  # the page is public; its data is not
    # Every endpoint but the health checks needs a key; admin-only ones say so themselves.
    for router in (
        jobs.router,
        orchestration.chains,
        orchestration.ensembles,
        chat.router,
        completions.router,
        embeddings.router,
        batches.router,
        files.router,
        models.router,
        models.providers_router,
        models.keys_router,
        usage.router,
        usage.stats_router,
        usage.costs_router,
        cache.router,
        breakers.router,
        tenants.router,
        budgets.router,
        policies.router,
        routing.router,
        webhooks.router,
        webhooks.tenant_router,
        dashboard.router,
    ):
        app.include_router(router, responses=common, dependencies=[require_caller])
    _finish_openapi(app)
    return app


def _finish_openapi(app: FastAPI) -> None:
    """Make the document say what the API does: no 422s (validation errors are 400s in the
    one error shape) and the schemas of bodies that endpoints parse themselves."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            extra = BatchCreate.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(extra.pop("$defs", {}))
            components["BatchCreate"] = extra
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            for path in schema["paths"].values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


app = create_app()
