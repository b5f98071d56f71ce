"""Job states and the only transitions allowed between them.

    queued ──claim──▶ running ──▶ succeeded | failed
      ▲  │              │
      │  └─▶ cancelled  ├──▶ queued   (fallback to another model's queue, or lease expired)
      │                 └──▶ waiting  (not before a time: backoff, rate-limit wait)
      └──── waiting ◀───┘
                │
                └──▶ succeeded  (served from the response cache while it waited, app/cache)

A job is also inserted ``waiting`` with no not-before time when the response cache holds it
for another job: an identical request in flight, or the embedding of its prompt.

Every status change in the code base goes through ``sources_for(target)``: the SQL that moves
a job is conditional on the job being in one of those sources, so two processes racing to
move the same job cannot both succeed.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    WAITING = "waiting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
)
LIVE: frozenset[JobStatus] = frozenset({JobStatus.QUEUED, JobStatus.WAITING, JobStatus.RUNNING})

_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.WAITING: frozenset(
        {JobStatus.QUEUED, JobStatus.CANCELLED, JobStatus.FAILED, JobStatus.SUCCEEDED}
    ),
    JobStatus.RUNNING: frozenset(
        {
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.QUEUED,
            JobStatus.WAITING,
            JobStatus.CANCELLED,
        }
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def can_move(source: JobStatus, target: JobStatus) -> bool:
    return target in _TRANSITIONS[source]


def sources_for(target: JobStatus) -> list[str]:
    """The statuses a job may be in for a move to ``target``; used in conditional UPDATEs."""
    return sorted(s.value for s, targets in _TRANSITIONS.items() if target in targets)


class BatchStatus(StrEnum):
    """OpenAI's batch statuses; ``validating`` is instant here (input is checked on submit)."""

    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
