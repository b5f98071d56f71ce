"""Which OpenAI endpoints a batch may target, and what job each line of it becomes.

One table: a batch's ``endpoint`` (and every line's ``url``) names a row; the row says how to
read a line's ``body`` (the endpoint's own request schema) and turn it into a job request.
Adding an endpoint (embeddings, completions) is adding a row once that job kind exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from app.chat.schemas import ChatCompletionCreate
from app.errors import InvalidInput
from app.jobs.schemas import ChatParams


@dataclass(frozen=True, slots=True)
class LineRequest:
    """What one line asks for: the job's parameters and its own metadata."""

    params: ChatParams
    metadata: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class EndpointKind:
    kind: str  # jobs.kind
    body: type[BaseModel]  # the endpoint's request body, as its own route validates it
    request: Callable[[Any], LineRequest]  # a validated body → the job's request


def _chat(body: ChatCompletionCreate) -> LineRequest:
    if body.stream:
        raise InvalidInput("a batch request cannot stream", param="stream")
    job = body.job()
    params = ChatParams.model_validate(
        job.model_dump(exclude_none=True, include=set(ChatParams.model_fields))
    )
    return LineRequest(params, job.metadata)


ENDPOINTS: dict[str, EndpointKind] = {
    "/v1/chat/completions": EndpointKind("chat", ChatCompletionCreate, _chat),
}

# Endpoints OpenAI's Batch API knows: a line naming one of these has a valid ``url``, just not
# one this gateway serves (``unsupported_endpoint``) or not the batch's (``endpoint_mismatch``).
OPENAI_ENDPOINTS = frozenset(
    {
        "/v1/responses",
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/completions",
        "/v1/moderations",
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/videos",
    }
)


def endpoint_kind(endpoint: str) -> EndpointKind:
    """The table's row for a batch's ``endpoint``; 400 ``unsupported_endpoint`` if none."""
    kind = ENDPOINTS.get(endpoint)
    if kind is None:
        served = ", ".join(sorted(ENDPOINTS))
        raise InvalidInput(
            f"endpoint {endpoint!r} is not supported; batches serve {served}",
            code="unsupported_endpoint",
            param="endpoint",
        )
    return kind
