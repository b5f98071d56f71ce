"""The reconciler: Postgres says what must be running; make the queues agree.

Run periodically (Celery beat), one run at a time across the deployment. Each pass:

1. Running jobs whose lease expired (their worker died or hung past its lease) go back to
   ``queued`` under a new claim token, so the old worker, if it ever wakes, can't record.
2. Queued or waiting jobs past their deadline fail with error class ``deadline``.
3. Waiting jobs whose not-before passed a while ago (their entry in the delayed set was lost)
   go back to ``queued``.
4. Queued jobs older than a grace period with no entry in the live-message set (their message
   was lost, e.g. Redis was flushed or restarted) are published again.
5. Entries of the live-message set whose job is no longer queued are dropped.
6. Chains and ensembles whose steps all ended without moving them on (a step failed here
   for its deadline, or was cancelled) are advanced (``app.orchestration.sweep``).
7. The response cache settles what waited on jobs that ended unsettled, and expires entries.

Republishing is always safe: a worker runs a job only if its conditional claim succeeds, so a
duplicate message finds the job running or finished and does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
import redis
from sqlalchemy import Engine

from app.batches.expiry import stop_due_batches
from app.constants import LIVE_MESSAGES_KEY, RECONCILE_LOCK_KEY
from app.db.raw import autocommit
from app.files.service import purge_expired
from app.jobs.observer import JobEnd, JobObserver, Unobserved
from app.jobs.service import Dispatcher, JobRef
from app.ledger.record import Failed, record
from app.orchestration.sweep import sweep
from app.routing.decision import DEADLINE

log = logging.getLogger(__name__)

CHUNK = 2000


@dataclass
class ReconcileReport:
    leases_expired: int = 0
    deadlines: int = 0
    promoted: int = 0
    republished: int = 0
    forgotten: int = 0
    batch_requests_stopped: int = 0  # of batches past their window, or cancelling
    files_purged: int = 0
    orchestrations: int = 0  # chains and ensembles moved on
    cache_settled: int = 0  # jobs that waited on a job the cache had not settled
    cache_expired: int = 0  # cache entries past their time
    skipped: bool = False  # another reconciler held the lock

    def total(self) -> int:
        repaired = self.leases_expired + self.deadlines + self.promoted + self.republished
        return repaired + self.orchestrations + self.cache_settled


_EXPIRED_LEASES = """
UPDATE jobs SET status = 'queued', claim_token = claim_token + 1, queued_at = now(),
    lease_until = NULL
WHERE id IN (
    SELECT id FROM jobs WHERE status = 'running' AND lease_until < now()
    ORDER BY lease_until LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING id, provider, priority"""

_PAST_DEADLINE = """
SELECT id, provider, models[chain_index + 1], priority, created_at FROM jobs
WHERE status IN ('queued', 'waiting') AND deadline_at < now()
ORDER BY deadline_at LIMIT %(limit)s"""

_OVERDUE_WAITING = """
UPDATE jobs SET status = 'queued', queued_at = now(), not_before = NULL
WHERE id IN (
    SELECT id FROM jobs WHERE status = 'waiting'
        AND not_before < now() - make_interval(secs => %(grace_s)s)
    ORDER BY not_before LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING id, provider, priority"""

_STALE_QUEUED = """
SELECT id, provider, priority FROM jobs
WHERE status = 'queued' AND queued_at < now() - make_interval(secs => %(grace_s)s)
    AND id > %(after)s
ORDER BY id LIMIT %(limit)s"""

_STILL_QUEUED = "SELECT id FROM jobs WHERE id = ANY(%(ids)s) AND status = 'queued'"


class Swept(Protocol):
    settled: int
    expired: int


class CacheSweep(Protocol):
    """The response cache's part of a pass (app/cache/sweep.py)."""

    def sweep(self) -> Swept: ...


class Reconciler:
    def __init__(
        self,
        engine: Engine,
        client: redis.Redis,
        dispatcher: Dispatcher,
        *,
        grace_s: float = 30.0,
        lock_s: float = 120.0,
        observer: JobObserver | None = None,
        cache: CacheSweep | None = None,
    ) -> None:
        self.engine = engine
        self.cache = cache
        self.redis = client
        self.dispatcher = dispatcher
        self.grace_s = grace_s
        self.lock_s = lock_s
        self.observer = observer or Unobserved()

    def run(self) -> ReconcileReport:
        """One pass, unless another one is running somewhere."""
        token = str(time.time())
        if not self.redis.set(RECONCILE_LOCK_KEY, token, nx=True, ex=int(self.lock_s)):
            return ReconcileReport(skipped=True)
        try:
            report = self._pass()
        finally:
            if self.redis.get(RECONCILE_LOCK_KEY) == token.encode():
                self.redis.delete(RECONCILE_LOCK_KEY)
        if report.total():
            log.warning("reconciler: %s", report)
        return report

    def _pass(self) -> ReconcileReport:
        report = ReconcileReport()
        with autocommit(self.engine) as conn:
            refs = _refs(conn.execute(_EXPIRED_LEASES, {"limit": CHUNK}).fetchall())
            report.leases_expired = len(refs)
            self._publish(refs)

            # Before deadlines: a batch's jobs past its window end as ``batch_expired``.
            report.batch_requests_stopped = stop_due_batches(conn, ended=self.observer.ended)
            rows = conn.execute(_PAST_DEADLINE, {"limit": CHUNK}).fetchall()
            for job_id, provider, model, priority, created_at in rows:
                failed = Failed(DEADLINE, "the job's deadline passed before it could run")
                if record(conn, job_id, failed, only_from=("queued", "waiting")).moved:
                    report.deadlines += 1
                    self.observer.ended(JobEnd("failed", provider, model, priority, created_at))

            refs = _refs(
                conn.execute(_OVERDUE_WAITING, {"limit": CHUNK, "grace_s": self.grace_s}).fetchall()
            )
            report.promoted = len(refs)
            self._publish(refs)

            report.republished = self._republish_lost(conn)
            report.forgotten = self._forget_finished(conn)
            report.files_purged = purge_expired(conn)
            report.orchestrations = sweep(conn, self.dispatcher)
        if self.cache is not None:
            swept = self.cache.sweep()
            report.cache_settled, report.cache_expired = swept.settled, swept.expired
        return report

    def _republish_lost(self, conn: psycopg.Connection[Any]) -> int:
        republished = 0
        after = ""
        while True:
            rows = conn.execute(
                _STALE_QUEUED, {"grace_s": self.grace_s, "after": after, "limit": CHUNK}
            ).fetchall()
            if not rows:
                return republished
            scores = self.redis.zmscore(LIVE_MESSAGES_KEY, [r[0] for r in rows])
            lost = [ref for ref, score in zip(_refs(rows), scores, strict=True) if score is None]
            self._publish(lost)
            republished += len(lost)
            after = rows[-1][0]

    def _forget_finished(self, conn: psycopg.Connection[Any]) -> int:
        """Drop live entries of jobs that left the queue (claimed, finished, deleted)."""
        cutoff = time.time() - self.grace_s
        forgotten = 0
        start = 0
        while True:
            members = self.redis.zrangebyscore(LIVE_MESSAGES_KEY, "-inf", cutoff, start, CHUNK)
            if not members:
                return forgotten
            ids = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
            queued = {r[0] for r in conn.execute(_STILL_QUEUED, {"ids": ids}).fetchall()}
            gone = [i for i in ids if i not in queued]
            if gone:
                self.redis.zrem(LIVE_MESSAGES_KEY, *gone)
                forgotten += len(gone)
            start += len(ids) - len(gone)

    def _publish(self, refs: Sequence[JobRef]) -> None:
        if refs:
            self.dispatcher.publish(refs)


def _refs(rows: Sequence[Any]) -> list[JobRef]:
    return [JobRef(job_id, provider, priority) for job_id, provider, priority in rows]
