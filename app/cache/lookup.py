"""Consulting the cache as jobs are submitted: serve at once, wait, or produce the answer.

For each new job that takes part (app/cache/directives.py), by its fingerprint's entry:

    the entry                                     the job
    ready and fresh (or pending, its job done)    served at once: inserted, then recorded
                                                  succeeded in the same transaction, cost 0
    pending, its job in flight, of a priority     waits for that job (held), and is served
      at least the job's own                      its answer when it succeeds
    an identical job earlier in the same batch    waits for that one
    none, expired, or its job ended unanswered    runs, and is the entry's pending producer

A repeat inside a batch waits for its first occurrence rather than running beside it: a
batch is not in a hurry, and its lines are queued together, so a repeat that ran would
almost always start before the first had answered and the batch would pay for every copy.
An interactive request waits only for one of its own priority, never behind batch traffic.
If the job it waits for fails or is cancelled, it runs after all (app/cache/settle.py).

A semantic request that is not served exactly is held for the embedding of its prompt
(app/cache/lookups.py); the worker looks the vector up once it is there (app/cache/semantic.py).
Everything here is a few indexed statements in the submission's transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy.orm import Session

from app.batches.lifecycle import ENDED_NOW, status_assignments
from app.cache.directives import DIRECTIVE, EXACT, CacheConfig, Directive, directive
from app.cache.entries import (
    IDENTICAL,
    PENDING,
    Answer,
    Hold,
    answers,
    claim,
    copy_vectors,
    count_hits,
    find,
    hold,
    waitable,
)
from app.cache.lookups import embeddable, submit_lookups
from app.cache.tally import HIT, MISS, CacheCount
from app.jobs.schemas import RoutedRequest
from app.jobs.service import JobRef
from app.jobs.states import LIVE, JobStatus
from app.ledger.record import BATCH_EVENT, record
from app.registry.service import Registry

WAITING = JobStatus.WAITING.value


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job about to be inserted: its row (``job_values``) and what was asked."""

    row: dict[str, Any]
    params: RoutedRequest


@dataclass
class Consulted:
    """What the cache made of new jobs; ``apply`` it once they are inserted."""

    tenant_id: str
    served: list[tuple[dict[str, Any], Answer, Directive]] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    producers: list[tuple[dict[str, Any], Directive]] = field(default_factory=list)
    prompts: list[tuple[str, str]] = field(default_factory=list)  # (job id, text to embed)
    counts: list[CacheCount] = field(default_factory=list)
    _served_ids: set[str] = field(default_factory=set)  # ``served``'s job ids, for lookups

    def is_served(self, row: dict[str, Any]) -> bool:
        """The job is served as it is inserted (it reserves no budget)."""
        if len(self._served_ids) != len(self.served):
            self._served_ids = {r["id"] for r, _, _ in self.served}
        return row["id"] in self._served_ids


def _conn(session: Session) -> psycopg.Connection[Any]:
    raw = session.connection().connection.driver_connection
    assert raw is not None
    return raw  # type: ignore[no-any-return]


def consult(
    session: Session, jobs: Sequence[NewJob], config: CacheConfig, *, tenant_id: str
) -> Consulted:
    """Decide, for each of ``jobs``, how the cache takes part; rows of jobs that will wait
    or be served become ``waiting``, and every directive joins its job's stored request."""
    consulted = Consulted(tenant_id)
    planned: list[tuple[NewJob, Directive]] = []
    for job in jobs:
        d = directive(job.params, job.row["request"], config)
        if d is not None:
            job.row["request"] = {**job.row["request"], DIRECTIVE: d.stored()}
            planned.append((job, d))
    if not planned:
        return consulted
    conn = _conn(session)
    found = find(conn, tenant_id, [d.key for _, d in planned])
    done = answers(conn, [f.job_id for f in found.values() if f.job_status == "succeeded"])
    first: dict[str, str] = {}  # fingerprint -> the job of this submission producing it
    for job, d in planned:
        row, entry = job.row, found.get(d.key)
        answer = done.get(entry.job_id) if entry is not None else None
        if entry is not None and answer is not None and (entry.fresh or entry.state == PENDING):
            row["status"] = WAITING  # recorded succeeded right after its insert
            consulted.served.append((row, answer, d))
            consulted.counts.append(
                CacheCount(
                    EXACT, HIT, answer.provider, answer.model, answer.saved_usd, row["priority"]
                )
            )
            continue
        if (
            entry is not None
            and entry.state == PENDING
            and entry.job_status in LIVE
            and entry.job_priority in waitable(row["priority"])
        ):
            holder: str | None = entry.job_id
        else:
            holder = first.get(d.key)
        if holder is not None:
            row["status"] = WAITING
            consulted.holds.append(Hold(row["id"], holder, IDENTICAL))
            continue
        first[d.key] = row["id"]
        consulted.producers.append((row, d))
        if d.text is not None and embeddable(d.text):
            row["status"] = WAITING  # until its prompt is embedded and looked up
            consulted.prompts.append((row["id"], d.text))
        else:
            row["cache"] = f"{d.mode}:{MISS}"
            model = row["models"][row["chain_index"]]
            consulted.counts.append(CacheCount(d.mode, MISS, row["provider"], model))
    return consulted


@dataclass(frozen=True, slots=True)
class Applied:
    refs: list[JobRef]  # lookup jobs to publish once committed
    counts: list[CacheCount]  # outcomes to count once committed


def apply(
    session: Session,
    consulted: Consulted,
    registry: Registry,
    config: CacheConfig,
    *,
    project: str | None,
    priority: str,
    deadline_s: float,
    now: datetime,
    batch_id: str | None = None,
) -> Applied:
    """After the jobs are inserted: serve, hold and claim what ``consult`` decided, and
    submit the embedding jobs of semantic prompts."""
    conn = _conn(session)
    if consulted.served:
        if batch_id is None:
            _serve_each(conn, consulted.served)
        else:
            _serve_batch(conn, consulted.served, batch_id)
        hits = Counter(d.key for _, _, d in consulted.served)
        count_hits(conn, consulted.tenant_id, dict(hits))
    lookups = submit_lookups(
        session,
        registry,
        config,
        consulted.prompts,
        tenant_id=consulted.tenant_id,
        project=project,
        priority=priority,
        deadline_s=deadline_s,
        now=now,
    )
    hold(conn, consulted.holds + lookups.holds)
    by_kind: dict[tuple[str, str], list[tuple[str, Directive]]] = {}
    for row, d in consulted.producers:
        by_kind.setdefault((row["kind"], row["priority"]), []).append((row["id"], d))
    for (kind, job_priority), producers in by_kind.items():
        claim(conn, consulted.tenant_id, kind, job_priority, producers, lookups.model)
    return Applied(lookups.refs, consulted.counts)


_PUBLISH_NOW = "UPDATE webhook_events SET published_at = NULL WHERE id = ANY(%s)"


def _serve_each(
    conn: psycopg.Connection[Any], served: list[tuple[dict[str, Any], Answer, Directive]]
) -> None:
    """Single submissions: each through the ledger's own statement (webhook included)."""
    for row, answer, _ in served:
        recorded = record(
            conn, row["id"], answer.served(EXACT), only_from=(WAITING,), notify=row["notify"]
        )
        if answer.kind == "embedding":
            copy_vectors(conn, [(row["id"], answer.job_id)])
        if recorded.webhook_events:  # nobody publishes them: the outbox sweep, at once
            conn.execute(_PUBLISH_NOW, (list(recorded.webhook_events),))


# A batch's jobs served at once, in one statement: the answer copied from each source row
# (never through Python), and the batch's counters (and status, if that was its last job).
_SERVE_BATCH = f"""WITH n AS (
    SELECT * FROM unnest(%(ids)s::text[], %(sources)s::text[], %(caches)s::text[])
        AS n(id, src, cache)
), j AS (
    UPDATE jobs SET status = 'succeeded', finished_at = now(), not_before = NULL,
        result = s.result, served_model = s.served_model, served_provider = s.served_provider,
        input_tokens = s.input_tokens, output_tokens = s.output_tokens,
        cached_tokens = s.cached_tokens, cost_usd = 0, latency_ms = NULL, cache = n.cache,
        cache_source_job_id = coalesce(s.cache_source_job_id, s.id),
        cost_saved_usd = coalesce(s.cost_saved_usd, s.cost_usd, 0)
    FROM n JOIN jobs s ON s.id = n.src
    WHERE jobs.id = n.id AND jobs.status = 'waiting'
    RETURNING jobs.id
), b AS (
    UPDATE batches SET succeeded = succeeded + (SELECT count(*) FROM j),
        {status_assignments("(SELECT count(*) FROM j)")}
    WHERE batches.id = %(batch_id)s
    RETURNING batches.status, batches.id, batches.tenant_id, batches.webhook_url,
        {ENDED_NOW} AS ended
){BATCH_EVENT}
SELECT (SELECT count(*) FROM j), ARRAY(SELECT id FROM eb)"""  # noqa: S608 - constants


def _serve_batch(
    conn: psycopg.Connection[Any],
    served: list[tuple[dict[str, Any], Answer, Directive]],
    batch_id: str,
) -> None:
    ids = [row["id"] for row, _, _ in served]
    sources = [answer.job_id for _, answer, _ in served]
    caches = [f"{EXACT}:{HIT}"] * len(served)  # found by their fingerprint, whatever asked
    params = {"ids": ids, "sources": sources, "caches": caches, "batch_id": batch_id}
    row = conn.execute(_SERVE_BATCH, params).fetchone()
    assert row is not None
    events = list(row[1] or [])
    if events:
        conn.execute(_PUBLISH_NOW, (events,))
    copy_vectors(conn, [(r["id"], a.job_id) for r, a, _ in served if a.kind == "embedding"])


@dataclass
class CacheAtSubmission:
    """The cache's part in one submission (a job, or a batch's jobs): ``consult`` before the
    insert, ``apply`` after it (``app.jobs.service.CacheStep``); ``counts`` then says what to
    count once the submission committed."""

    config: CacheConfig
    registry: Registry
    tenant_id: str
    consulted: Consulted | None = None
    applied: Applied | None = None

    def consult(
        self, session: Session, rows: Sequence[dict[str, Any]], params: Sequence[RoutedRequest]
    ) -> None:
        jobs = [NewJob(row, p) for row, p in zip(rows, params, strict=True)]
        self.consulted = consult(session, jobs, self.config, tenant_id=self.tenant_id)

    def served(self, row: dict[str, Any]) -> bool:
        return self.consulted is not None and self.consulted.is_served(row)

    def apply(
        self,
        session: Session,
        *,
        project: str | None,
        priority: str,
        deadline_s: float,
        now: datetime,
        batch_id: str | None = None,
    ) -> list[JobRef]:
        if self.consulted is None:
            return []
        self.applied = apply(
            session,
            self.consulted,
            self.registry,
            self.config,
            project=project,
            priority=priority,
            deadline_s=deadline_s,
            now=now,
            batch_id=batch_id,
        )
        return self.applied.refs

    @property
    def counts(self) -> list[CacheCount]:
        return self.applied.counts if self.applied is not None else []
