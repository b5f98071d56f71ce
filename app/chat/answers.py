"""A finished job as OpenAI's ``chat.completion`` (or its chunks), or as OpenAI's error.

A failed job's error class becomes an HTTP status a client of OpenAI already handles:

    context_length, invalid_request, content_filter   400  invalid_request_error
    rate_limit                                         429  rate_limit_error
    auth, not_found, unknown (the upstream's fault)    502  api_error
    quality (no answer passed the validators)          502  api_error
    overloaded, server_error, circuit_open             503  api_error
    timeout, deadline                                  504  api_error
    cancelled (POST /v1/jobs/{id}/cancel)              409  invalid_request_error

``auth`` is 502, not 401: the provider refused the gateway's key, not the caller's, and a 401
would tell the caller's SDK its own key is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse
from starlette.responses import Response

from app.chat.chunks import ChunkWriter, served
from app.chat.schemas import (
    AssistantMessage,
    ChatCompletion,
    Choice,
    CompletionUsage,
    FunctionCall,
    OpenAIErrorBody,
    PromptTokensDetails,
    ToolCall,
)
from app.db.tables import JobRow
from app.ledger.cost import format_usd
from app.providers.finish_reasons import openai_finish_reason
from app.providers.types import Delta, TextDelta, ToolCallDelta

COMPLETION_PREFIX = "chatcmpl-"
WAIT_TIMEOUT = "wait_timeout"

_STATUS: dict[str, tuple[int, str]] = {
    "context_length": (400, "invalid_request_error"),
    "invalid_request": (400, "invalid_request_error"),
    "content_filter": (400, "invalid_request_error"),
    "rate_limit": (429, "rate_limit_error"),
    "auth": (502, "api_error"),
    "not_found": (502, "api_error"),
    "quality": (502, "api_error"),
    "unknown": (502, "api_error"),
    "overloaded": (503, "api_error"),
    "server_error": (503, "api_error"),
    "circuit_open": (503, "api_error"),
    "timeout": (504, "api_error"),
    "deadline": (504, "api_error"),
}
# OpenAI's own codes where it has one for the same failure.
_OPENAI_CODES = {"context_length": "context_length_exceeded", "rate_limit": "rate_limit_exceeded"}
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


# The failures the endpoints that answer on the request document (their 200 is their own).
FAILURES: dict[int | str, dict[str, Any]] = {
    code: {"model": OpenAIErrorBody, "description": why}
    for code, why in (
        (400, "Invalid input, unknown model, or the job failed on context length"),
        (402, "A budget has no room for this job's worst-case cost"),
        (409, "The job was cancelled"),
        (429, "The job failed on rate limits"),
        (502, "The provider failed (its key, an unknown model upstream)"),
        (503, "Every model of the chain was overloaded or down"),
        (504, "The job timed out, or is still running: poll GET /v1/jobs/{job_id}"),
    )
}


def error_type(status: int) -> str:
    """OpenAI's error ``type`` for an HTTP status."""
    return _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def completion(job: JobRow) -> ChatCompletion:
    """A succeeded job as OpenAI's ``chat.completion``; ``model`` is the model that answered,
    ``finish_reason`` one of OpenAI's (the job keeps the provider's own: ``end_turn``, ...)."""
    result = job.result or {}
    calls = [
        ToolCall(id=c["id"], function=FunctionCall(name=c["name"], arguments=c["arguments"]))
        for c in result.get("tool_calls", [])
    ]
    usage = None
    if job.input_tokens is not None:
        output = job.output_tokens or 0
        usage = CompletionUsage(
            prompt_tokens=job.input_tokens,
            completion_tokens=output,
            total_tokens=job.input_tokens + output,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=job.cached_tokens or 0),
        )
    return ChatCompletion(
        id=COMPLETION_PREFIX + job.id,
        created=int(job.created_at.timestamp()),
        model=job.served_model or (job.models[0] if job.models else ""),
        choices=[
            Choice(
                message=AssistantMessage(content=result.get("text"), tool_calls=calls or None),
                finish_reason=openai_finish_reason(
                    result.get("finish_reason"), tool_calls=bool(calls)
                ),
            )
        ],
        usage=usage,
    )


def job_headers(job: JobRow) -> dict[str, str]:
    headers = {"x-switchboard-job-id": job.id}
    if job.served_model is not None:
        headers["x-switchboard-model"] = job.served_model
    if job.served_provider is not None:
        headers["x-switchboard-provider"] = job.served_provider
    cost = format_usd(job.cost_usd)
    if cost is not None:
        headers["x-switchboard-cost-usd"] = cost
    if job.cache is not None:  # "exact:hit", "semantic:miss", ... (app/cache)
        headers["x-switchboard-cache"] = job.cache
    return headers


def failure(job: JobRow) -> tuple[int, dict[str, Any]]:
    """A failed or cancelled job as (status, OpenAI error body)."""
    if job.status == "cancelled":
        status, kind, code = 409, "invalid_request_error", "job_cancelled"
        message = f"job {job.id} was cancelled before it ran"
    else:
        error_class = job.error_class or "unknown"
        status, kind = _STATUS.get(error_class, (502, "api_error"))
        code = _OPENAI_CODES.get(error_class, error_class)
        message = f"job {job.id} failed: {job.error_message or error_class}"
    return status, error_body(message, kind, code, job_id=job.id)


def error_body(
    message: str, kind: str, code: str | None, *, job_id: str | None = None
) -> dict[str, Any]:
    detail: dict[str, Any] = {"message": message, "type": kind, "code": code, "param": None}
    if job_id is not None:
        detail["job_id"] = job_id
    return {"error": detail}


def chunks(
    answer: ChatCompletion, *, include_usage: bool, extension: dict[str, Any] | None = None
) -> Iterator[bytes]:
    """A finished answer as OpenAI's SSE chunks (``app.chat.chunks``): the role, the content in
    one delta, each tool call whole, the finish reason, the usage chunk if asked for, then
    ``[DONE]``; ``extension`` (``x_switchboard``) rides on the last chunk."""
    choice = answer.choices[0]
    message = choice.message
    deltas: list[Delta] = [TextDelta(message.content)] if message.content else []
    deltas += [
        ToolCallDelta(i, call.id, call.function.name, call.function.arguments)
        for i, call in enumerate(message.tool_calls or [])
    ]
    usage = answer.usage.model_dump(mode="json") if include_usage and answer.usage else None
    writer = ChunkWriter(answer.id, answer.created, answer.model)
    return writer.whole(deltas, choice.finish_reason, usage, extension)


# Server-sent events must reach the client as written: no cache, no proxy buffering (nginx).
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def not_succeeded(job: JobRow) -> JSONResponse:
    """The response for a job that failed or was cancelled: OpenAI's error and status, with
    the ``x-switchboard-*`` headers."""
    headers = job_headers(job)
    status, payload = failure(job)
    if status == 409:
        headers["x-should-retry"] = "false"  # a cancelled job stays cancelled
    return JSONResponse(payload, status_code=status, headers=headers)


def ended(job: JobRow, *, stream: bool, include_usage: bool) -> Response:
    """The response for a job that has ended: OpenAI's error, or its answer, whole or as
    chunks — every ``x-switchboard-*`` header included."""
    if job.status != "succeeded":
        return not_succeeded(job)
    headers = job_headers(job)
    answer = completion(job)
    if stream:
        return StreamingResponse(
            chunks(answer, include_usage=include_usage, extension=served(job)),
            media_type="text/event-stream",
            headers=headers | SSE_HEADERS,
        )
    return JSONResponse(answer.model_dump(mode="json"), headers=headers)


def wait_timeout(job_id: str, wait_s: float) -> JSONResponse:
    """The 504 for a job that has not ended within the wait; it keeps running."""
    message = (
        f"job {job_id} has not ended after {wait_s:g}s; it keeps running: "
        f"poll GET /v1/jobs/{job_id}"
    )
    return JSONResponse(
        error_body(message, "api_error", WAIT_TIMEOUT, job_id=job_id),
        status_code=504,
        # OpenAI's SDKs retry a 504 unless told not to; a retry would submit a second job.
        headers={"x-switchboard-job-id": job_id, "x-should-retry": "false"},
    )
