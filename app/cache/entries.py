"""The cache's rows: entries (answers, ready or pending), holds, and the answers they point at.

An entry is one tenant's fingerprint. ``pending``: ``job_id`` is producing the answer, and an
identical request of no higher priority waits for it (a hold) instead of running. ``ready``:
``job_id`` is the job that produced the answer, reusable until ``expires_at`` — ``ttl``
seconds after that job finished, however many requests reused it since. Every change bumps
``version`` (the in-process semantic index reads only what changed).

Every statement here runs on the caller's psycopg connection, inside the caller's
transaction: submission's, or the settling of a job that ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from app.cache.directives import Directive
from app.cache.index import Vector
from app.constants import PRIORITY_ORDER
from app.jobs.states import LIVE
from app.ledger.record import Served

READY, PENDING = "ready", "pending"
IDENTICAL, SIMILAR, EMBEDDING = "identical", "similar", "embedding"  # why a job is held
BUMP = "version = nextval('cache_entries_version_seq')"
_LIVE = ", ".join(f"'{s.value}'" for s in sorted(LIVE))


def waitable(priority: str) -> tuple[str, ...]:
    """Priorities of jobs a job of ``priority`` may wait for: its own and higher ones (an
    interactive request never waits on batch traffic)."""
    order = [p.value for p in PRIORITY_ORDER]
    return tuple(order[: order.index(priority) + 1])


@dataclass(frozen=True, slots=True)
class Answer:
    """A succeeded job whose answer can be reused, read from its row."""

    job_id: str  # the row read (whose vectors an embedding hit copies)
    source_id: str  # the job that produced the answer (the row itself, or its source)
    kind: str
    result: dict[str, Any]
    model: str
    provider: str
    input_tokens: int | None
    output_tokens: int | None
    cached_tokens: int | None
    saved_usd: Decimal
    finished_at: datetime  # when its source produced it

    def served(self, mode: str, similarity: float | None = None) -> Served:
        return Served(
            result=self.result,
            model_id=self.model,
            provider=self.provider,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cached_tokens=self.cached_tokens,
            cache=f"{mode}:hit",
            source_job_id=self.source_id,
            saved_usd=self.saved_usd,
            similarity=similarity,
        )


# A job served from the cache answers with its source's answer, as old as its source's.
_ANSWERS = """SELECT j.id, coalesce(j.cache_source_job_id, j.id), j.kind, j.result,
        j.served_model, j.served_provider, j.input_tokens, j.output_tokens, j.cached_tokens,
        coalesce(j.cost_saved_usd, j.cost_usd, 0), coalesce(s.finished_at, j.finished_at)
    FROM jobs j LEFT JOIN jobs s ON s.id = j.cache_source_job_id
    WHERE j.id = ANY(%(ids)s) AND j.status = 'succeeded' AND j.result IS NOT NULL"""


def answers(conn: psycopg.Connection[Any], job_ids: Iterable[str]) -> dict[str, Answer]:
    """The answers of those of ``job_ids`` that succeeded."""
    rows = conn.execute(_ANSWERS, {"ids": list(set(job_ids))}).fetchall()
    return {r[0]: Answer(*r) for r in rows}


_COPY_VECTORS = """INSERT INTO embeddings (job_id, count, dimensions, vectors)
    SELECT n.id, e.count, e.dimensions, e.vectors
    FROM unnest(%(ids)s::text[], %(sources)s::text[]) AS n(id, src)
    JOIN embeddings e ON e.job_id = n.src
    ON CONFLICT (job_id) DO NOTHING"""


def copy_vectors(conn: psycopg.Connection[Any], pairs: Sequence[tuple[str, str]]) -> None:
    """Embedding jobs served from the cache get their answers' vectors: (job, answer's job)
    pairs, copied inside the database (every reader finds a job's vectors by its own id)."""
    if pairs:
        ids, sources = zip(*pairs, strict=True)
        conn.execute(_COPY_VECTORS, {"ids": list(ids), "sources": list(sources)})


@dataclass(frozen=True, slots=True)
class Found:
    """An entry for a fingerprint, with the state of the job it points at."""

    key: str
    state: str
    job_id: str
    fresh: bool  # ready and not expired
    job_status: str
    job_priority: str


# Locks the entries' jobs (FOR SHARE) until the asking transaction commits: a job that ends
# meanwhile records its end only after, so its settling sees every hold taken on it here.
_FIND = """SELECT e.key, e.state, e.job_id, coalesce(e.expires_at > now(), false), j.status,
        j.priority
    FROM cache_entries e JOIN jobs j ON j.id = e.job_id
    WHERE e.tenant_id = %(tenant)s AND e.key = ANY(%(keys)s)
    FOR SHARE OF j"""


def find(conn: psycopg.Connection[Any], tenant_id: str, keys: Sequence[str]) -> dict[str, Found]:
    rows = conn.execute(_FIND, {"tenant": tenant_id, "keys": list(set(keys))}).fetchall()
    return {r[0]: Found(*r) for r in rows}


# A new job becomes an entry's producer if there is no entry yet, or the one there is
# replaceable: a ready answer past its time, or a pending one whose job ended unanswered.
_CLAIM = f"""INSERT INTO cache_entries (tenant_id, key, kind, state, job_id, priority, requested,
        scope, embedding_model)
    SELECT %(tenant)s, key, %(kind)s, 'pending', job_id, %(priority)s, requested, scope,
        %(embedding_model)s
    FROM unnest(%(keys)s::text[], %(jobs)s::text[], %(requested)s::text[], %(scopes)s::text[])
        AS n(key, job_id, requested, scope)
    ON CONFLICT (tenant_id, key) DO UPDATE SET state = 'pending', job_id = EXCLUDED.job_id,
        priority = EXCLUDED.priority, requested = EXCLUDED.requested, model = NULL,
        scope = EXCLUDED.scope, ready_at = NULL, expires_at = NULL,
        embedding_model = coalesce(EXCLUDED.embedding_model, cache_entries.embedding_model),
        embedding = CASE WHEN EXCLUDED.embedding_model IS NULL
            OR EXCLUDED.embedding_model = cache_entries.embedding_model
            THEN cache_entries.embedding END,
        {BUMP}
    WHERE (cache_entries.state = 'ready' AND cache_entries.expires_at <= now())
        OR (cache_entries.state = 'pending' AND NOT EXISTS (
            SELECT 1 FROM jobs WHERE jobs.id = cache_entries.job_id AND jobs.status IN ({_LIVE})))
    RETURNING job_id"""  # noqa: S608 - constants


def claim(
    conn: psycopg.Connection[Any],
    tenant_id: str,
    kind: str,
    priority: str,
    producers: Sequence[tuple[str, Directive]],
    embedding_model: str | None,
) -> set[str]:
    """Make each (job, directive) its fingerprint's pending producer where it may be; returns
    the jobs that are (a concurrent submission may have taken a fingerprint first)."""
    if not producers:
        return set()
    params = {
        "tenant": tenant_id,
        "kind": kind,
        "priority": priority,
        "embedding_model": embedding_model,
        "keys": [d.key for _, d in producers],
        "jobs": [job for job, _ in producers],
        "requested": [d.requested for _, d in producers],
        "scopes": [d.scope for _, d in producers],
    }
    return {r[0] for r in conn.execute(_CLAIM, params).fetchall()}


_READY = f"""UPDATE cache_entries SET state = 'ready', job_id = %(source)s, model = %(model)s,
        ready_at = now(), expires_at = %(finished_at)s + make_interval(secs => %(ttl)s), {BUMP}
    WHERE tenant_id = %(tenant)s AND key = %(key)s AND job_id = %(job)s"""  # noqa: S608
# A producer that ran without owning its fingerprint (a concurrent one held it) still leaves
# its answer, unless a fresh one is there.
_READY_UNOWNED = f"""INSERT INTO cache_entries (tenant_id, key, kind, state, job_id, priority,
        requested, model, scope, ready_at, expires_at)
    VALUES (%(tenant)s, %(key)s, %(kind)s, 'ready', %(source)s, %(priority)s, %(requested)s,
        %(model)s, %(scope)s, now(), %(finished_at)s + make_interval(secs => %(ttl)s))
    ON CONFLICT (tenant_id, key) DO UPDATE SET state = 'ready', job_id = EXCLUDED.job_id,
        model = EXCLUDED.model, ready_at = now(), expires_at = EXCLUDED.expires_at, {BUMP}
    WHERE cache_entries.state = 'ready' AND cache_entries.expires_at <= now()"""  # noqa: S608


def make_ready(
    conn: psycopg.Connection[Any],
    tenant_id: str,
    job_id: str,
    priority: str,
    directive: Directive,
    answer: Answer,
) -> None:
    """``job_id`` ended with ``answer`` (its own, or reused): its fingerprint serves it."""
    params = {
        "tenant": tenant_id,
        "key": directive.key,
        "job": job_id,
        "kind": answer.kind,
        "priority": priority,
        "requested": directive.requested,
        "source": answer.source_id,
        "model": answer.model,
        "scope": directive.scope,
        "finished_at": answer.finished_at,
        "ttl": directive.ttl_s,
    }
    if conn.execute(_READY, params).rowcount == 0:
        conn.execute(_READY_UNOWNED, params)


def drop_pending(conn: psycopg.Connection[Any], tenant_id: str, key: str, job_id: str) -> None:
    """``job_id`` ended without an answer: it no longer produces one for ``key``."""
    conn.execute(
        "DELETE FROM cache_entries WHERE tenant_id = %s AND key = %s AND job_id = %s "
        "AND state = 'pending'",
        (tenant_id, key, job_id),
    )


def set_vector(
    conn: psycopg.Connection[Any], tenant_id: str, key: str, job_id: str, vector: Vector
) -> None:
    """The prompt's embedding on the entry ``job_id`` produces, for later semantic lookups."""
    conn.execute(
        f"UPDATE cache_entries SET embedding = %s, {BUMP} "  # noqa: S608 - constants
        "WHERE tenant_id = %s AND key = %s AND job_id = %s",
        (vector.tolist(), tenant_id, key, job_id),
    )


def count_hits(conn: psycopg.Connection[Any], tenant_id: str, keys: dict[str, int]) -> None:
    """These fingerprints' answers were reused this many times (for listings and eviction)."""
    if not keys:
        return
    conn.execute(
        """UPDATE cache_entries e SET hits = e.hits + n.hits, last_hit_at = now()
        FROM unnest(%(keys)s::text[], %(hits)s::int[]) AS n(key, hits)
        WHERE e.tenant_id = %(tenant)s AND e.key = n.key""",
        {"tenant": tenant_id, "keys": list(keys), "hits": list(keys.values())},
    )


def count_hit(conn: psycopg.Connection[Any], entry_id: int) -> None:
    conn.execute(
        "UPDATE cache_entries SET hits = hits + 1, last_hit_at = now() WHERE id = %s",
        (entry_id,),
    )


@dataclass(frozen=True, slots=True)
class Hold:
    job_id: str
    holder_id: str
    reason: str
    position: int | None = None
    similarity: float | None = None


def hold(conn: psycopg.Connection[Any], holds: Sequence[Hold]) -> None:
    """Jobs (inserted ``waiting``) that wait for others to end."""
    if not holds:
        return
    conn.execute(
        """INSERT INTO cache_holds (job_id, holder_id, reason, position, similarity)
        SELECT * FROM unnest(%(jobs)s::text[], %(holders)s::text[], %(reasons)s::text[],
            %(positions)s::int[], %(similarities)s::real[])
        ON CONFLICT (job_id) DO UPDATE SET holder_id = EXCLUDED.holder_id,
            reason = EXCLUDED.reason, position = EXCLUDED.position,
            similarity = EXCLUDED.similarity, created_at = now()""",
        {
            "jobs": [h.job_id for h in holds],
            "holders": [h.holder_id for h in holds],
            "reasons": [h.reason for h in holds],
            "positions": [h.position for h in holds],
            "similarities": [h.similarity for h in holds],
        },
    )


@dataclass(frozen=True, slots=True)
class Held:
    """A job waiting for another, as settling needs it."""

    job_id: str
    reason: str
    position: int | None
    similarity: float | None
    status: str
    tenant_id: str
    priority: str
    provider: str
    kind: str
    request: dict[str, Any]
    notify: bool
    created_at: datetime


_WAITING_FOR = """SELECT job_id FROM cache_holds WHERE holder_id = %(holder)s
    ORDER BY position NULLS FIRST, job_id LIMIT %(limit)s"""
_TAKE_HELD = """DELETE FROM cache_holds h USING jobs j
    WHERE h.job_id = %(job)s AND h.holder_id = %(holder)s AND j.id = h.job_id
    RETURNING h.job_id, h.reason, h.position, h.similarity, j.status, j.tenant_id, j.priority,
        j.provider, j.kind, j.request, j.notify, j.created_at"""


def waiting_for(conn: psycopg.Connection[Any], holder_id: str, limit: int) -> list[str]:
    """Up to ``limit`` of the jobs waiting for ``holder_id``, in their order."""
    rows = conn.execute(_WAITING_FOR, {"holder": holder_id, "limit": limit})
    return [row[0] for row in rows]


def take_held(conn: psycopg.Connection[Any], holder_id: str, job_id: str) -> Held | None:
    """``job_id``, its hold on ``holder_id`` removed (in the caller's transaction: if that
    rolls back, it waits on); None if another settling took it first.

    One held job per transaction: settling locks it, its budget windows and its batch, in
    the order every job's end takes them, so it never deadlocks with a cancellation."""
    with conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(_TAKE_HELD, {"holder": holder_id, "job": job_id}).fetchone()
    return Held(**row) if row is not None else None
