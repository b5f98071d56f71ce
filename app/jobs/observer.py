"""What the job runner tells whoever watches it: claims, admissions and recorded outcomes.

The runner (``app.jobs.execution``) calls an observer at three points — after it claims a
job, after admission answers, and after an outcome is committed — so nothing watching it is
woven through the decision code; the reconciler and the API report the jobs they end
themselves (a deadline, a cancellation) through ``ended``. Workers observe with their
Prometheus metrics (``app.metrics.worker``); ``Unobserved`` is the default.

Implementations run on the per-job hot path, in the job's own thread: they must be cheap
(counters in memory, no I/O) and must not raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.jobs.admission import Permit, TooLarge, Wait
from app.jobs.claims import Claim
from app.ledger.record import AttemptRecord, Outcome


@dataclass(frozen=True, slots=True)
class JobEnd:
    """A job that reached a terminal status, under the model it ended on."""

    status: str  # succeeded | failed | cancelled
    provider: str
    model: str
    priority: str
    created_at: datetime


class JobObserver(Protocol):
    def claimed(self, claim: Claim) -> None:
        """A worker took the job off its queue (``claim.queue_wait_s`` after it was queued)."""

    def admitted(self, provider: str, admitted: Permit | Wait | TooLarge) -> None:
        """Admission answered for a call to ``provider``: go (maybe after sleeping in the
        slot), set aside until tokens come, or never fits."""

    def recorded(self, claim: Claim, outcome: Outcome, attempt: AttemptRecord | None) -> None:
        """``outcome`` (and ``attempt``) committed under ``claim``: recorded exactly once."""

    def ended(self, job: JobEnd, count: int = 1) -> None:
        """A job (or ``count`` like it) ended outside the runner: its deadline passed in the
        queue, it was cancelled, its batch was."""


class Unobserved:
    """Watches nothing."""

    def claimed(self, claim: Claim) -> None:
        pass

    def admitted(self, provider: str, admitted: Permit | Wait | TooLarge) -> None:
        pass

    def recorded(self, claim: Claim, outcome: Outcome, attempt: AttemptRecord | None) -> None:
        pass

    def ended(self, job: JobEnd, count: int = 1) -> None:
        pass
