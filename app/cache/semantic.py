"""The semantic lookup: once a lookup job has embedded its prompts, find each one's answer.

For each job held for the embedding of its last user message, in input order:

1. its vector goes on the entry it produces (so later requests can find it, and so can the
   next prompt of this same lookup: paraphrases inside one batch find each other);
2. an identical request that answered meanwhile serves it exactly;
3. else the most similar fresh answer in its partition (same tenant, model, parameters and
   earlier messages; app/cache/index.py) at or above its threshold serves it: a ``semantic``
   hit, its similarity recorded;
4. else a similar enough request still in flight (of a priority at least its own, and not
   itself waiting for another) is waited for, as an identical one would be;
5. else it runs: queued and published, a semantic miss.

If the lookup job failed (or was cancelled) its jobs run without a lookup. A job no longer
waiting (cancelled, past its deadline) is left as it is. Each job is looked up in a
transaction of its own: the next one sees its vector.
"""

from __future__ import annotations

from typing import Any

import psycopg

from app.cache.directives import DIRECTIVE, EXACT, SEMANTIC, Directive
from app.cache.entries import (
    PENDING,
    READY,
    SIMILAR,
    Held,
    Hold,
    answers,
    count_hit,
    find,
    hold,
    set_vector,
    waitable,
)
from app.cache.index import Query, SemanticIndex, unit
from app.cache.settle import WAITING, Settled, release, serve
from app.embeddings.vectors import Matrix, unpack
from app.jobs.states import LIVE

# A similar request in flight, and whether it waits itself: a job waits only for one that
# does not (two paraphrases looked up at once must not end up waiting for each other).
_IN_FLIGHT = """SELECT j.status, EXISTS (SELECT 1 FROM cache_holds h WHERE h.job_id = j.id)
    FROM jobs j WHERE j.id = %s FOR SHARE OF j"""
# Float32 rounding: a prompt embedded twice is "1.0" similar give or take this.
EPSILON = 1e-6


def vectors_of(conn: psycopg.Connection[Any], job_id: str) -> Matrix | None:
    row = conn.execute(
        "SELECT vectors, count, dimensions FROM embeddings WHERE job_id = %s", (job_id,)
    ).fetchone()
    if row is None:
        return None
    data, count, dimensions = row
    return unpack(bytes(data), count, dimensions)


def resolve(
    conn: psycopg.Connection[Any], index: SemanticIndex, job: Held, vectors: Matrix, model: str
) -> Settled:
    """Serve, hold or release ``job`` by its prompt's vector (row ``position`` of
    ``vectors``, embedded by ``model``)."""
    if job.status != WAITING:
        return Settled()
    d = Directive.from_stored(job.request[DIRECTIVE])
    if d.scope is None or job.position is None or job.position >= len(vectors):
        return release(conn, job)
    return _look_up(conn, index, job, d, unit(vectors[job.position]), model)


def _look_up(
    conn: psycopg.Connection[Any],
    index: SemanticIndex,
    job: Held,
    d: Directive,
    vector: Any,
    model: str,
) -> Settled:
    assert d.scope is not None
    set_vector(conn, job.tenant_id, d.key, job.job_id, vector)
    same = find(conn, job.tenant_id, [d.key]).get(d.key)
    if same is not None and same.job_id != job.job_id and same.job_status == "succeeded":
        answer = answers(conn, [same.job_id]).get(same.job_id)
        if answer is not None and (same.fresh or same.state == PENDING):
            return serve(conn, job, answer, EXACT)
    query = Query(job.tenant_id, d.scope, model, vector, job.job_id, waitable(job.priority))
    threshold = (d.threshold or 1.0) - EPSILON
    near = {c.state: c for c in index.nearest(conn, query) if c.similarity >= threshold}
    ready = near.get(READY)
    if ready is not None:
        answer = answers(conn, [ready.job_id]).get(ready.job_id)
        if answer is not None:
            count_hit(conn, ready.entry_id)
            return serve(conn, job, answer, SEMANTIC, ready.similarity)
    pending = near.get(PENDING)
    if pending is not None:
        # Locked until this commits: if it ends meanwhile, its settling sees this hold.
        row = conn.execute(_IN_FLIGHT, (pending.job_id,)).fetchone()
        status, held = (row[0], row[1]) if row is not None else (None, False)
        if status in LIVE and not held:
            hold(conn, [Hold(job.job_id, pending.job_id, SIMILAR, similarity=pending.similarity)])
            return Settled()
        answer = answers(conn, [pending.job_id]).get(pending.job_id)
        if answer is not None:
            return serve(conn, job, answer, SEMANTIC, pending.similarity)
    return release(conn, job)
