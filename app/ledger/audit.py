"""Checking the ledger's promises for a set of jobs: nothing lost, nothing recorded twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, text

from app.providers.errors import ErrorKind
from app.routing.decision import DEADLINE

CLASSIFIED = [k.value for k in ErrorKind] + [DEADLINE, "circuit_open"]


@dataclass(frozen=True, slots=True)
class Audit:
    submitted: int
    succeeded: int
    failed: int
    lost: int  # submitted but missing, or not finished
    duplicated: int  # more than one succeeded attempt, or a result without one
    unclassified: int  # failed without an error class from the taxonomy
    counters_off: int  # batches whose counters disagree with their jobs
    failure_classes: dict[str, int]

    @property
    def clean(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.unclassified == 0
            and (self.counters_off == 0)
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_JOBS = text(
    """SELECT count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
        count(*) FILTER (WHERE status = 'failed') AS failed,
        count(*) FILTER (WHERE status NOT IN ('succeeded', 'failed', 'cancelled')) AS unfinished,
        count(*) FILTER (WHERE status = 'failed'
                         AND (error_class IS NULL OR NOT error_class = ANY(:classes)))
            AS unclassified,
        count(*) AS present
    FROM jobs WHERE id = ANY(:ids)"""
)
_CLASSES = text(
    """SELECT error_class, count(*) FROM jobs
    WHERE id = ANY(:ids) AND status = 'failed' GROUP BY 1 ORDER BY 1"""
)
# A job is paid for once: exactly one succeeded attempt if it succeeded, none otherwise.
_DUPLICATED = text(
    """SELECT count(*) FROM jobs j
    LEFT JOIN LATERAL (SELECT count(*) AS wins FROM attempts a
                       WHERE a.job_id = j.id AND a.status = 'succeeded') w ON true
    WHERE j.id = ANY(:ids)
        AND ((j.status = 'succeeded' AND w.wins <> 1)
             OR (j.status <> 'succeeded' AND w.wins > 0))"""
)
_COUNTERS = text(
    """SELECT count(*) FROM batches b
    JOIN LATERAL (SELECT count(*) FILTER (WHERE status = 'succeeded') AS s,
                         count(*) FILTER (WHERE status = 'failed') AS f
                  FROM jobs WHERE batch_id = b.id) c ON true
    WHERE b.id IN (SELECT DISTINCT batch_id FROM jobs WHERE id = ANY(:ids))
        AND (b.succeeded <> c.s OR b.failed <> c.f)"""
)


def audit(engine: Engine, job_ids: Sequence[str]) -> Audit:
    params = {"ids": list(job_ids), "classes": CLASSIFIED}
    with engine.connect() as conn:
        jobs = conn.execute(_JOBS, params).one()
        classes = {row[0] or "none": int(row[1]) for row in conn.execute(_CLASSES, params)}
        duplicated = int(conn.execute(_DUPLICATED, params).scalar_one())
        counters_off = int(conn.execute(_COUNTERS, params).scalar_one())
    missing = len(job_ids) - int(jobs.present)
    return Audit(
        submitted=len(job_ids),
        succeeded=int(jobs.succeeded),
        failed=int(jobs.failed),
        lost=missing + int(jobs.unfinished),
        duplicated=duplicated,
        unclassified=int(jobs.unclassified),
        counters_off=counters_off,
        failure_classes=classes,
    )
