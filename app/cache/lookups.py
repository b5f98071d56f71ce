"""The embedding jobs that embed prompts for the semantic lookup.

A semantic request's prompt is embedded by an ordinary embedding job of its tenant (and
project, priority and deadline), on ``SWITCHBOARD_CACHE_EMBEDDING_MODEL``: through the same
queues, rate limits, keys, fallbacks, budgets and ledger as any other, visible in
``GET /v1/jobs`` with the metadata ``switchboard_cache: semantic_lookup``. Its requests wait
(``waiting``, held) until it ends; then the cache looks their vectors up (app/cache/semantic.py).
A batch's prompts are embedded up to ``LOOKUP_INPUTS`` per job, so 50,000 semantic lines are
a few hundred provider calls, and the API never waits on a provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.budgets.service import reserve
from app.budgets.worst_case import worst_case_usd
from app.cache.directives import DIRECTIVE, CacheConfig
from app.cache.entries import EMBEDDING, Hold
from app.constants import Priority
from app.embeddings.schemas import MAX_INPUT_CHARS, MAX_TOTAL_CHARS, EmbeddingParams
from app.errors import InvalidInput, UnknownModel
from app.jobs.service import JobRef, insert_jobs, job_values
from app.registry.service import ModelInfo, Registry

LOOKUP_INPUTS = 256
LOOKUP = {"lookup": "semantic"}  # the directive of a lookup job
METADATA = {"switchboard_cache": "semantic_lookup"}


def is_lookup(directive: dict[str, Any]) -> bool:
    return directive.get("lookup") == LOOKUP["lookup"]


def embedding_model(registry: Registry, config: CacheConfig) -> ModelInfo:
    """The model that embeds prompts; 400 ``semantic_cache_unavailable`` if there is none."""
    name = config.embedding_model
    if name is None:
        why = "no embedding model is set"
    else:
        try:
            model = registry.model(name)
        except UnknownModel:
            why = f"{name!r} is not an enabled model of the registry"
        else:
            if "embeddings" in model.capabilities:
                return model
            why = f"{name!r} does not serve embeddings"
    raise InvalidInput(
        f"the semantic cache is unavailable: {why} (SWITCHBOARD_CACHE_EMBEDDING_MODEL); "
        "use `cache.mode: exact`",
        code="semantic_cache_unavailable",
        param="cache.mode",
    )


def embeddable(text: str) -> bool:
    """A prompt one embedding input can hold."""
    return len(text) <= MAX_INPUT_CHARS


@dataclass(frozen=True, slots=True)
class Lookups:
    refs: list[JobRef]
    holds: list[Hold]
    model: str | None = None  # the embedding model's id (entries are compared within it)


def submit_lookups(
    session: Session,
    registry: Registry,
    config: CacheConfig,
    prompts: Sequence[tuple[str, str]],
    *,
    tenant_id: str,
    project: str | None,
    priority: str,
    deadline_s: float,
    now: datetime,
) -> Lookups:
    """Embedding jobs for ``prompts`` (job id, normalised text), inserted queued with their
    budget reserved, and the holds that make those jobs wait for them."""
    if not prompts:
        return Lookups([], [])
    model = embedding_model(registry, config)
    rows: list[dict[str, Any]] = []
    holds: list[Hold] = []
    for chunk in _chunks(prompts):
        params = EmbeddingParams(
            model=model.id,
            input=[text for _, text in chunk],
            dimensions=config.embedding_dimensions,
        )
        row = job_values(
            params,
            [model],
            now=now,
            priority=Priority(priority),
            tenant_id=tenant_id,
            deadline_s=deadline_s,
            metadata=dict(METADATA),
            project=project,
        )
        row["request"][DIRECTIVE] = dict(LOOKUP)
        rows.append(row)
        holds += [Hold(job_id, row["id"], EMBEDDING, i) for i, (job_id, _) in enumerate(chunk)]
    amounts = [worst_case_usd(row["request"], [model]) for row in rows]
    reserved = reserve(session, tenant_id, project, amounts, now=now)
    if reserved is not None:
        for row, job_holds in zip(rows, reserved, strict=True):
            row["budget_holds"] = job_holds
    insert_jobs(session, rows)
    refs = [JobRef(r["id"], r["provider"], r["priority"]) for r in rows]
    return Lookups(refs, holds, model.id)


def _chunks(prompts: Sequence[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    chunks: list[list[tuple[str, str]]] = []
    chunk: list[tuple[str, str]] = []
    chars = 0
    for prompt in prompts:
        size = len(prompt[1])
        if chunk and (len(chunk) == LOOKUP_INPUTS or chars + size > MAX_TOTAL_CHARS):
            chunks.append(chunk)
            chunk, chars = [], 0
        chunk.append(prompt)
        chars += size
    if chunk:
        chunks.append(chunk)
    return chunks
