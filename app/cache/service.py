"""The cache in a worker process: settles each job it knows that ended, and sweeps.

The runner calls ``job_ended`` right after it recorded a job's end (a dictionary lookup for a
job that takes no part); the reconciler calls ``sweep`` on each pass, which settles whatever a
crash left unsettled, expires entries past their time and evicts beyond the tenant's bound.
Settling never decides a job's own fate, only that of the jobs that waited for it; if it
fails, the sweep settles the same job again (every step is conditional, so twice is safe).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Engine

from app.cache.directives import DIRECTIVE, CacheConfig
from app.cache.entries import Held, take_held, waiting_for
from app.cache.index import SemanticIndex, choose_index
from app.cache.lookups import is_lookup
from app.cache.semantic import resolve, vectors_of
from app.cache.settle import CHUNK, Ended, Settled, produced, read_job, settle_held
from app.cache.sweep import SweepReport, evict, expire, leftovers
from app.cache.tally import Tally, untallied
from app.db.raw import autocommit
from app.jobs.observer import JobEnd
from app.jobs.service import Dispatcher
from app.jobs.states import LIVE

log = logging.getLogger(__name__)

EVICT_EVERY_S = 60.0
LIVE_STATUSES = frozenset(s.value for s in LIVE)


@dataclass
class ResponseCache:
    """What settling needs of its process: the engine, the publishers, the counters."""

    engine: Engine
    config: CacheConfig
    dispatcher: Dispatcher
    publish_events: Callable[[tuple[str, ...]], None] = lambda event_ids: None
    tally: Tally = untallied
    on_served: Callable[[JobEnd], None] = lambda job: None
    index: SemanticIndex | None = None  # chosen on first use (pgvector or in-process)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._evicted_at = float("-inf")

    def job_ended(self, job_id: str, request: dict[str, Any]) -> None:
        """The runner's hook, once ``job_id``'s end is committed."""
        if DIRECTIVE not in request:
            return
        try:
            self.settle(job_id)
        except Exception:  # the sweep settles it again
            log.warning("job %s: settling its cache waiters failed", job_id, exc_info=True)

    def settle(self, job_id: str) -> Settled:
        """Settle ``job_id`` (ended) and, in turn, the jobs served from it that others wait
        for; returns what was done."""
        total = Settled()
        todo = [job_id]
        while todo:
            done = self._settle_one(todo.pop())
            total.add(done)
            todo += done.then
        return total

    def semantic_index(self, conn: psycopg.Connection[Any]) -> SemanticIndex:
        with self._lock:
            if self.index is None:
                self.index = choose_index(conn, self.config.index)
                log.info("semantic cache: %s index", self.index.name)
            return self.index

    def sweep(self) -> SweepReport:
        """Expire, settle what was left unsettled, and (every minute) evict."""
        report = SweepReport()
        with autocommit(self.engine) as conn:
            report.expired = expire(conn)
            holders = leftovers(conn)
        for holder in holders:
            report.settled += len(self.settle(holder).counts)
        now = self.clock()
        if now - self._evicted_at >= EVICT_EVERY_S:
            self._evicted_at = now
            with autocommit(self.engine) as conn:
                report.evicted = evict(conn, self.config.max_entries)
        return report

    def _settle_one(self, job_id: str) -> Settled:
        total = Settled()
        with autocommit(self.engine) as conn:
            job = read_job(conn, job_id)
            if job is not None and job.status in LIVE_STATUSES:
                return total  # not ended: nothing to settle yet
            settle_one = self._settler(conn, job)
            while True:
                waiting = waiting_for(conn, job_id, CHUNK)
                done = Settled()
                for held_id in waiting:
                    with conn.transaction():
                        held = take_held(conn, job_id, held_id)
                        if held is not None:
                            done.add(settle_one(held))
                self._committed(done)  # a chunk's publishing and counting at once
                total.add(done)
                if len(waiting) < CHUNK:
                    return total

    def _settler(
        self, conn: psycopg.Connection[Any], job: Ended | None
    ) -> Callable[[Held], Settled]:
        """How a job waiting for ``job`` (None: a job gone from the table) is settled."""
        if job is not None and is_lookup(job.directive):
            vectors = vectors_of(conn, job.id) if job.status == "succeeded" else None
            if vectors is None:
                return lambda held: settle_held(conn, held, None)
            index = self.semantic_index(conn)
            model = job.served_model or ""
            return lambda held: resolve(conn, index, held, vectors, model)
        answer = None
        if job is not None and job.directive:
            with conn.transaction():
                answer = produced(conn, job)
        return lambda held: settle_held(conn, held, answer)

    def _committed(self, done: Settled) -> None:
        """Publish and count what a committed chunk did."""
        if done.refs:
            try:
                self.dispatcher.publish(done.refs)
            except Exception:
                log.warning("%d released job(s) not published; the reconciler will", len(done.refs))
        if done.events:
            try:
                self.publish_events(tuple(done.events))
            except Exception:
                log.warning("webhook events not published; the sweep will")
        for count in done.counts:
            self.tally(count)
        for held, answer in done.served:
            self.on_served(
                JobEnd("succeeded", answer.provider, answer.model, held.priority, held.created_at)
            )
