"""Waiting for a job to end without holding a connection or a thread while it runs.

The job's row says when it has ended; each read of it borrows a pooled connection and a
worker thread for a few milliseconds only. Between reads, an awaited job's waiter blocks on
the job's Redis stream (``app.relay``), where the worker writes ``JobEnded`` right after the
end committed: the row is read again the moment it changed, so answering on the request adds
next to nothing to the provider's own time. Reads still happen every ``FALLBACK_READ_S``
whatever Redis says (a job cancelled through the API or failed by the reconciler sends no
event; a Redis that is down reads as silence), so an end is never missed. Without a stream,
the pause between reads grows from ``FIRST_PAUSE_S`` to ``MAX_PAUSE_S``: a quick job
answers quickly and thousands of slow ones cost at most a few cheap reads a second each.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio
from sqlalchemy.orm import Session, sessionmaker

from app.db.tables import JobRow
from app.jobs.states import TERMINAL, JobStatus
from app.relay.subscriber import Subscription

FIRST_PAUSE_S = 0.02
MAX_PAUSE_S = 0.25
GROWTH = 1.5
FALLBACK_READ_S = 1.0  # with a stream: the longest wait between two reads of the row


def _ended(sessions: sessionmaker[Session], job_id: str) -> JobRow | None:
    """The job's row if it has ended, read in a short session of its own."""
    with sessions() as session:
        job = session.get(JobRow, job_id)
        if job is None or JobStatus(job.status) not in TERMINAL:
            return None
        session.expunge(job)  # loaded and detached: readable after the session closes
        return job


async def ended_job(sessions: sessionmaker[Session], job_id: str) -> JobRow | None:
    """The job, if it has succeeded, failed or been cancelled by now (one read)."""
    return await anyio.to_thread.run_sync(_ended, sessions, job_id)


async def job_end(
    sessions: sessionmaker[Session],
    job_id: str,
    *,
    timeout_s: float,
    abandoned: Callable[[], Awaitable[bool]] | None = None,
    events: Subscription | None = None,
    fallback_s: float = FALLBACK_READ_S,
) -> JobRow | None:
    """The job once it succeeded, failed or was cancelled; ``None`` if not within the time,
    or as soon as ``abandoned`` says nobody waits for the answer any more (the client hung
    up: the job runs on, its result stays readable at ``GET /v1/jobs/{id}``). ``events``,
    the job's stream, wakes the wait when the worker records its end; the row is read at
    least every ``fallback_s`` all the same."""
    deadline = time.monotonic() + timeout_s
    pause = FIRST_PAUSE_S
    while True:
        job = await ended_job(sessions, job_id)
        if job is not None:
            return job
        left = deadline - time.monotonic()
        if left <= 0 or (abandoned is not None and await abandoned()):
            return None
        if events is not None:
            await events.read(min(fallback_s, left))  # whatever came: read the row
            continue
        await anyio.sleep(min(pause, left))
        pause = min(pause * GROWTH, MAX_PAUSE_S)
