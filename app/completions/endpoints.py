"""``POST /v1/completions``: OpenAI's legacy text completions, served by a chat job.

The prompt becomes the one user message of a ``high``-priority chat job, through the same
submission, queues, fallbacks and ledger as ``/v1/chat/completions``; the answer is OpenAI's
``text_completion``. ``stream: true`` relays the text as the provider produces it, in
``text_completion`` chunks (``app.chat.live``, with this endpoint's ``Shape``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from app.api.deps import IdempotencyKey, State
from app.chat.endpoints import OpenAIErrors, WaitSeconds
from app.chat.live import answer_on_request
from app.completions.answers import TEXT
from app.completions.schemas import CompletionCreate, TextCompletion
from app.jobs.answered import FAILURES, job_spec
from app.jobs.submission import Submitter

router = APIRouter(prefix="/v1", tags=["completions"], route_class=OpenAIErrors)

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The answer; with `stream: true`, OpenAI's server-sent chunks, relayed "
        "as the provider produces them",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    **FAILURES,
}


@router.post(
    "/completions",
    summary="OpenAI-compatible text completion (a high-priority chat job, answered when it ends)",
    response_model=TextCompletion,
    responses=RESPONSES,
)
async def create_completion(
    body: CompletionCreate,
    request: Request,
    submitter: Submitter,
    idempotency_key: IdempotencyKey,
    state: State,
    x_switchboard_wait_s: WaitSeconds = None,
) -> Response:
    return await answer_on_request(
        request,
        submitter,
        state,
        job_spec(body.job),
        idempotency_key,
        x_switchboard_wait_s,
        stream=body.stream,
        include_usage=body.usage_in_stream,
        shape=TEXT,
    )
