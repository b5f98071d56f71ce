"""When a job the cache knows ends: its entry, and the jobs that waited for it.

A producer that succeeded makes its fingerprint's entry ``ready`` (its answer, for ``ttl``
seconds from when it finished), and every job held for it is served that answer — recorded
succeeded through the ledger's own statement (``Served``: cost 0, its budget reservation
released, its batch's counters moved, its webhook written), a ``hit`` that saved what the
answer cost. A producer that failed or was cancelled gives its entry up, and the jobs held for
it run after all (``queued`` and published, each a ``miss``): they may succeed where it did
not, and one of them becomes the next producer.

Each held job is settled in a transaction of its own, with the removal of its hold, so a
crash part-way loses nothing: the holds left are settled by the reconciler's sweep
(app/cache/sweep.py). Everything is conditional on the held job still ``waiting``, so
settling twice is harmless. Publishing and counting follow each ``CHUNK`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from app.cache.directives import DIRECTIVE, EXACT, SEMANTIC, Directive
from app.cache.entries import (
    IDENTICAL,
    SIMILAR,
    Answer,
    Held,
    answers,
    copy_vectors,
    drop_pending,
    make_ready,
)
from app.cache.tally import HIT, MISS, CacheCount
from app.jobs.service import JobRef
from app.jobs.states import JobStatus
from app.ledger.record import record

CHUNK = 100
WAITING = JobStatus.WAITING.value


@dataclass(frozen=True, slots=True)
class Ended:
    """A job that ended, as settling reads it."""

    id: str
    status: str
    tenant_id: str
    priority: str
    kind: str
    request: dict[str, Any]
    served_model: str | None

    @property
    def directive(self) -> dict[str, Any]:
        stored: dict[str, Any] = self.request.get(DIRECTIVE) or {}
        return stored


_JOB = "SELECT id, status, tenant_id, priority, kind, request, served_model FROM jobs WHERE id = %s"


def read_job(conn: psycopg.Connection[Any], job_id: str) -> Ended | None:
    """The job as settling reads it (None: gone from the table)."""
    row = conn.execute(_JOB, (job_id,)).fetchone()
    return Ended(*row) if row is not None else None


@dataclass
class Settled:
    """What one chunk did, to publish and count once it committed."""

    refs: list[JobRef] = field(default_factory=list)  # released: to publish
    events: list[str] = field(default_factory=list)  # webhook events written
    counts: list[CacheCount] = field(default_factory=list)
    served: list[tuple[Held, Answer]] = field(default_factory=list)
    then: list[str] = field(default_factory=list)  # served jobs others may wait for

    def add(self, other: Settled) -> None:
        self.refs += other.refs
        self.events += other.events
        self.counts += other.counts
        self.served += other.served
        self.then += other.then


def produced(conn: psycopg.Connection[Any], job: Ended) -> Answer | None:
    """The producer ``job`` ended: its entry is ready with its answer, or given up. Returns
    the answer its waiting jobs get (None: they run)."""
    d = Directive.from_stored(job.directive)
    if job.status != JobStatus.SUCCEEDED:
        drop_pending(conn, job.tenant_id, d.key, job.id)
        return None
    answer = answers(conn, [job.id]).get(job.id)
    if answer is None:
        drop_pending(conn, job.tenant_id, d.key, job.id)
    else:
        make_ready(conn, job.tenant_id, job.id, job.priority, d, answer)
    return answer


def serve(
    conn: psycopg.Connection[Any],
    held: Held,
    answer: Answer,
    mode: str,
    similarity: float | None = None,
) -> Settled:
    """Record ``held`` succeeded with ``answer`` (if it is still waiting)."""
    done = Settled()
    recorded = record(
        conn,
        held.job_id,
        answer.served(mode, similarity),
        only_from=(WAITING,),
        notify=held.notify,
    )
    if not recorded.moved:
        return done
    if answer.kind == "embedding":
        copy_vectors(conn, [(held.job_id, answer.job_id)])
    done.events += recorded.webhook_events
    done.counts.append(CacheCount(mode, HIT, answer.provider, answer.model, answer.saved_usd))
    done.served.append((held, answer))
    if held.reason != IDENTICAL:  # it produced for its own fingerprint: others may wait
        done.then.append(held.job_id)
    return done


# waiting -> queued, as the transition table allows (app/jobs/states.py).
_RELEASE = """UPDATE jobs SET status = 'queued', queued_at = now(), cache = %(cache)s
    WHERE id = %(id)s AND status = 'waiting'
    RETURNING id, provider, priority, models[chain_index + 1]"""


def release(conn: psycopg.Connection[Any], held: Held) -> Settled:
    """``held`` runs after all: queued (published once committed), a miss of its mode."""
    done = Settled()
    stored = held.request.get(DIRECTIVE) or {}
    mode = SEMANTIC if stored.get("mode") == SEMANTIC else EXACT
    row = conn.execute(_RELEASE, {"cache": f"{mode}:{MISS}", "id": held.job_id}).fetchone()
    if row is not None:
        job_id, provider, priority, model = row
        done.refs.append(JobRef(job_id, provider, priority))
        done.counts.append(CacheCount(mode, MISS, provider, model))
    return done


def settle_held(conn: psycopg.Connection[Any], held: Held, answer: Answer | None) -> Settled:
    """Serve ``held`` the answer of what it waited for, or release it."""
    if held.status != WAITING:
        return Settled()  # cancelled, or past its deadline, while it waited
    if answer is None:
        return release(conn, held)
    mode = SEMANTIC if held.reason == SIMILAR else EXACT
    return serve(conn, held, answer, mode, held.similarity)
