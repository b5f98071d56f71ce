"""Answering an OpenAI-compatible endpoint on the same request: submit, wait, job or error.

``/v1/embeddings`` and ``/v1/completions`` submit a ``high``-priority job through the one job
submission (tenant, budgets, routing, publish after commit), wait for it without holding a
thread (``app.chat.waiting``), and answer a failed, cancelled or unfinished job as the chat
endpoint does: OpenAI's error shape and status (``app.chat.answers``), the
``x-switchboard-*`` headers, and a 504 naming the job when the wait runs out.
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
from app.chat.answers import error_body, failure, job_headers
from app.chat.endpoints import RESPONSES
from app.chat.waiting import job_end
from app.db.tables import JobRow
from app.embeddings.schemas import EmbeddingJobCreate
from app.errors import InvalidInput
from app.jobs.schemas import JobCreate
from app.jobs.submission import JobSubmitter

# The failures these endpoints document (their 200 is their own).
FAILURES: dict[int | str, dict[str, Any]] = {k: v for k, v in RESPONSES.items() if k != 200}


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


async def submit_and_wait(
    request: Request,
    submitter: JobSubmitter,
    state: ApiState,
    spec: JobCreate | EmbeddingJobCreate,
    idempotency_key: str | None,
    wait_s: float | None,
) -> Answered | JSONResponse:
    """The succeeded job, or the response that answers for a job that did not succeed."""
    awaited = state.streams is not None  # the worker tells of the job's end through Redis
    accepted = await run_in_threadpool(submitter.submit, spec, idempotency_key, awaited=awaited)
    limit = state.settings.chat_wait_timeout_s
    wait_s = min(wait_s, limit) if wait_s is not None else limit
    job = await job_end(
        state.sessions,
        accepted.id,
        timeout_s=wait_s,
        abandoned=request.is_disconnected,
        events=state.streams.subscribe(accepted.id) if state.streams is not None else None,
    )
    if job is None:
        message = (
            f"job {accepted.id} has not ended after {wait_s:g}s; it keeps running: "
            f"poll GET /v1/jobs/{accepted.id}"
        )
        return JSONResponse(
            error_body(message, "api_error", "wait_timeout", job_id=accepted.id),
            status_code=504,
            # OpenAI's SDKs retry a 504 unless told not to; a retry would submit a second job.
            headers={"x-switchboard-job-id": accepted.id, "x-should-retry": "false"},
        )
    headers = job_headers(job)
    if job.status != "succeeded":
        status, payload = failure(job)
        if status == 409:
            headers["x-should-retry"] = "false"
        return JSONResponse(payload, status_code=status, headers=headers)
    return Answered(job, headers)
