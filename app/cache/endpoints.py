"""``/v1/cache``: what the response cache holds, and purging it (all of it, or one model's).

A tenant key reads and purges its own tenant's answers; the admin key every tenant's, or the
one named by ``tenant``. Purging removes reusable answers only: the jobs keep theirs, and
requests in flight still hand theirs to the identical requests waiting for them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.api.auth import CurrentCaller
from app.api.deps import ReadSession, State, UnitOfWork
from app.cache.directives import CacheConfig
from app.cache.index import IN_PROCESS, PGVECTOR

router = APIRouter(prefix="/v1/cache", tags=["cache"])

TenantParam = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Admin only: one tenant (default: all). A tenant key always gets its own.",
    ),
]
ModelParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        description="Only the answers this model produced (as `served_model` names it).",
    ),
]


class CacheModelOut(BaseModel):
    model: str
    entries: int
    hits: int


class SemanticOut(BaseModel):
    available: bool = Field(description="An embedding model is configured.")
    embedding_model: str | None
    dimensions: int | None = Field(description="Null: the model's own.")
    threshold: float = Field(description="The default least cosine similarity for a hit.")
    index: Literal["pgvector", "in_process"] = Field(
        description="`pgvector`: the database searches; `in_process`: each worker does."
    )


class CacheInfo(BaseModel):
    object: Literal["cache"] = "cache"
    tenant: str | None
    entries: int = Field(description="Answers ready to be reused (not expired).")
    pending: int = Field(description="Answers in flight that identical requests wait for.")
    hits: int = Field(description="Times the ready answers were reused.")
    by_model: list[CacheModelOut]
    default_mode: str = Field(description="What a request without `cache.mode` gets.")
    ttl_s: int = Field(description="How long an answer is reused unless a request says.")
    max_entries: int = Field(description="Ready answers kept per tenant (least used go).")
    semantic: SemanticOut


class CachePurged(BaseModel):
    object: Literal["cache.purged"] = "cache.purged"
    tenant: str | None
    model: str | None
    deleted: int


_SCOPE = "(CAST(:tenant AS text) IS NULL OR tenant_id = :tenant)"
_BY_MODEL = text(
    f"""SELECT coalesce(model, ''), count(*), coalesce(sum(hits), 0)::bigint
    FROM cache_entries WHERE state = 'ready' AND expires_at > now() AND {_SCOPE}
    GROUP BY 1 ORDER BY 2 DESC, 1"""  # noqa: S608 - constants
)
_PENDING = text(f"SELECT count(*) FROM cache_entries WHERE state = 'pending' AND {_SCOPE}")  # noqa: S608
_PGVECTOR = text("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
_PURGE = text(
    f"""DELETE FROM cache_entries WHERE state = 'ready' AND {_SCOPE}
    AND (CAST(:model AS text) IS NULL OR model = :model)"""  # noqa: S608 - constants
)


@router.get("", summary="What the response cache holds: answers by model, settings")
def read_cache(
    caller: CurrentCaller, session: ReadSession, state: State, tenant: TenantParam = None
) -> CacheInfo:
    scope = caller.scope(tenant)
    config = CacheConfig.from_settings(state.settings)
    models = [
        CacheModelOut(model=model, entries=entries, hits=hits)
        for model, entries, hits in session.execute(_BY_MODEL, {"tenant": scope})
    ]
    pending = session.execute(_PENDING, {"tenant": scope}).scalar_one()
    pgvector = session.execute(_PGVECTOR).first() is not None and config.index != IN_PROCESS
    return CacheInfo(
        tenant=scope,
        entries=sum(m.entries for m in models),
        pending=pending,
        hits=sum(m.hits for m in models),
        by_model=models,
        default_mode=config.default_mode,
        ttl_s=config.ttl_s,
        max_entries=config.max_entries,
        semantic=SemanticOut(
            available=config.embedding_model is not None,
            embedding_model=config.embedding_model,
            dimensions=config.embedding_dimensions,
            threshold=config.threshold,
            index=PGVECTOR if pgvector else IN_PROCESS,
        ),
    )


@router.delete("", summary="Purge cached answers: the tenant's (admin: all), or one model's")
def purge_cache(
    caller: CurrentCaller, uow: UnitOfWork, tenant: TenantParam = None, model: ModelParam = None
) -> CachePurged:
    scope = caller.scope(tenant)
    with uow() as session:
        deleted = session.execute(_PURGE, {"tenant": scope, "model": model}).rowcount  # type: ignore[attr-defined]
    return CachePurged(tenant=scope, model=model, deleted=deleted)
