"""``POST /v1/chat/completions``: OpenAI's endpoint, served by a durable job.

The request becomes a normal ``high``-priority job through the same submission as
``POST /v1/jobs`` (tenant, budgets, routing, publish after commit); the request then waits,
asynchronously, for the job to end and answers in OpenAI's shape — or, with ``stream: true``,
relays the job's deltas as the provider produces them (``app.chat.live``). A wait longer than
``chat_wait_timeout_s`` answers 504 with the job id, which ``GET /v1/jobs/{id}`` still serves.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from app.api.deps import IdempotencyKey, State
from app.chat.answers import FAILURES, error_type
from app.chat.live import answer_on_request
from app.chat.schemas import ChatCompletion, ChatCompletionCreate
from app.jobs.answered import job_spec
from app.jobs.submission import Submitter

log = logging.getLogger(__name__)


class OpenAIErrors(APIRoute):
    """Renders every error of its routes, including those raised before the endpoint runs
    (key, validation, unknown model, budget), in OpenAI's shape: the app's own rendering
    plus OpenAI's ``type`` (and ``param``), so OpenAI's SDKs raise their usual exceptions."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except Exception as exc:
                rendered = await _rendered(request, exc)
                if rendered is None:
                    raise
                return _in_openai_shape(rendered)

        return handler


async def _rendered(request: Request, exc: Exception) -> Response | None:
    handlers = request.app.exception_handlers
    for cls in type(exc).__mro__:
        render = handlers.get(cls)
        if render is not None:
            response = render(request, exc)
            if inspect.isawaitable(response):
                response = await response
            return response if isinstance(response, Response) else None
    return None


def _in_openai_shape(response: Response) -> Response:
    try:
        body = orjson.loads(bytes(response.body))
        detail = body["error"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return response
    detail.setdefault("type", error_type(response.status_code))
    detail.setdefault("param", None)
    headers = {
        k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")
    }
    return JSONResponse(body, status_code=response.status_code, headers=headers)


router = APIRouter(prefix="/v1/chat", tags=["chat"], route_class=OpenAIErrors)

WaitSeconds = Annotated[
    float | None,
    Header(
        gt=0,
        description="Wait at most this long (capped by the gateway's `chat_wait_timeout_s`).",
    ),
]


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
    summary="OpenAI-compatible chat completion (a high-priority job, answered when it ends)",
    response_model=ChatCompletion,
    responses=RESPONSES,
)
async def create_chat_completion(
    body: ChatCompletionCreate,
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
    )
