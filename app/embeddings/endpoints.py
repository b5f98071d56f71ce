"""``POST /v1/embeddings``: OpenAI's endpoint, served by a durable embedding job.

The request becomes a ``high``-priority embedding job (tenant, budgets, routing restricted to
models with the ``embeddings`` capability) and is answered when it ends, in OpenAI's shape:
floats, or base64 little-endian float32 (what OpenAI's SDKs ask for by default and decode).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from app.api.deps import IdempotencyKey, State
from app.chat.endpoints import OpenAIErrors, WaitSeconds
from app.embeddings.answers import embedding_list
from app.embeddings.schemas import EmbeddingCreate, EmbeddingList
from app.embeddings.vectors import Matrix, dumps, load
from app.jobs.answered import FAILURES, submit_and_wait
from app.jobs.answered import job_spec as as_job
from app.jobs.submission import Submitter

router = APIRouter(prefix="/v1", tags=["embeddings"], route_class=OpenAIErrors)


@router.post(
    "/embeddings",
    summary="OpenAI-compatible embeddings (a high-priority job, answered when it ends)",
    response_model=EmbeddingList,
    responses=FAILURES,
)
async def create_embeddings(
    body: EmbeddingCreate,
    request: Request,
    submitter: Submitter,
    idempotency_key: IdempotencyKey,
    state: State,
    x_switchboard_wait_s: WaitSeconds = None,
) -> Response:
    spec = as_job(body.job)
    answered = await submit_and_wait(
        request, submitter, state, spec, idempotency_key, x_switchboard_wait_s
    )
    if isinstance(answered, Response):
        return answered
    job = answered.job
    matrix = await run_in_threadpool(_vectors, state.sessions, job.id)
    document = embedding_list(job, matrix, body.encoding_format)
    return Response(dumps(document), media_type="application/json", headers=answered.headers)


def _vectors(sessions: sessionmaker[Session], job_id: str) -> Matrix:
    with sessions() as session:
        matrix = load(session, job_id)
    assert matrix is not None  # stored in the transaction that recorded the success
    return matrix
