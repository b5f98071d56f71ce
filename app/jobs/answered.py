"""Answering an OpenAI-compatible endpoint on the same request: submit, wait, job or error.

``/v1/chat/completions``, ``/v1/embeddings`` and ``/v1/completions`` submit a
``high``-priority job through the one job submission (tenant, budgets, routing, publish after
commit), wait for it without holding a thread (``app.chat.waiting``, woken by the worker), and
answer a failed, cancelled or unfinished job alike: OpenAI's error shape and status
(``app.chat.answers``), the ``x-switchboard-*`` headers, and a 504 naming the job when the
wait runs out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from app.api.state import ApiState
from app.chat.answers import FAILURES, job_headers, not_succeeded, wait_timeout
from app.chat.waiting import job_end
from app.db.tables import JobRow
from app.embeddings.schemas import EmbeddingJobCreate
from app.errors import InvalidInput
from app.jobs.schemas import JobCreate
from app.jobs.submission import Accepted, JobSubmitter

__all__ = [
    "FAILURES",
    "Answered",
    "job_spec",
    "submit_and_wait",
    "submit_awaited",
    "wait_for",
    "wait_limit",
]


@dataclass(frozen=True, slots=True)
class Answered:
    """A job that succeeded, and the headers its answer carries."""

    job: JobRow
    headers: dict[str, str]


Spec = TypeVar("Spec", JobCreate, EmbeddingJobCreate)


def job_spec(build: Callable[[], Spec]) -> Spec:
    """The job a request body becomes; a body valid on its own but not as a job is a 400."""
    try:
        return build()
    except ValidationError as exc:
        first: dict[str, Any] = dict(exc.errors()[0])
        raise InvalidInput(str(first.get("msg", "invalid request"))) from exc


async def submit_awaited(
    submitter: JobSubmitter,
    state: ApiState,
    spec: JobCreate | EmbeddingJobCreate,
    idempotency_key: str | None,
) -> Accepted:
    """Submit a job whose caller waits on the request: with a relay, the worker tells of its
    end through the job's stream (``app.relay``) rather than the waiter polling its row."""
    awaited = state.streams is not None
    return await run_in_threadpool(submitter.submit, spec, idempotency_key, awaited=awaited)


def wait_limit(state: ApiState, asked_s: float | None) -> float:
    """How long to wait: what the caller asked (``x-switchboard-wait-s``), at most the
    gateway's ``chat_wait_timeout_s``."""
    limit = state.settings.chat_wait_timeout_s
    return min(asked_s, limit) if asked_s is not None else limit


async def wait_for(request: Request, state: ApiState, job_id: str, wait_s: float) -> JobRow | None:
    """The job once it has ended; ``None`` if not within ``wait_s`` or the client hung up."""
    return await job_end(
        state.sessions,
        job_id,
        timeout_s=wait_s,
        abandoned=request.is_disconnected,
        events=state.streams.subscribe(job_id) if state.streams is not None else None,
    )


async def submit_and_wait(
    request: Request,
    submitter: JobSubmitter,
    state: ApiState,
    spec: JobCreate | EmbeddingJobCreate,
    idempotency_key: str | None,
    wait_s: float | None,
) -> Answered | JSONResponse:
    """The succeeded job, or the response that answers for a job that did not succeed."""
    accepted = await submit_awaited(submitter, state, spec, idempotency_key)
    waited_s = wait_limit(state, wait_s)
    job = await wait_for(request, state, accepted.id, waited_s)
    if job is None:
        return wait_timeout(accepted.id, waited_s)
    if job.status != "succeeded":
        return not_succeeded(job)
    return Answered(job, job_headers(job))
