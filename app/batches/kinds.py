"""Which OpenAI endpoints a batch may target, what job each line of it becomes, and how a
succeeded line is answered.

One table: a batch's ``endpoint`` (and every line's ``url``) names a row; the row says how to
read a line's ``body`` (the endpoint's own request schema, so a line is refused exactly where
the endpoint would refuse the same body), turn it into a job request (whose ``kind`` and
required capability route, admit and budget it as the endpoint's own jobs are), and write a
succeeded job's output-line body in the endpoint's own response shape (its own renderer).

    endpoint              job kind    a line's body        output-line body
    /v1/chat/completions  chat        ChatCompletionCreate chat.completion
    /v1/completions       chat        CompletionCreate     text_completion
    /v1/embeddings        embedding   EmbeddingCreate      list of embedding (floats, or
                                                           base64 if the line asked)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from app.chat.answers import completion
from app.chat.schemas import ChatCompletionCreate
from app.completions.answers import text_completion
from app.completions.schemas import CompletionCreate
from app.db.tables import JobRow
from app.embeddings.answers import embedding_list
from app.embeddings.schemas import EmbeddingCreate, EmbeddingParams
from app.embeddings.vectors import Encoding, Matrix
from app.errors import InvalidInput
from app.jobs.schemas import BatchItem, ChatParams, JobCreate, RoutedRequest

# OpenAI's limit on an embeddings batch: inputs across all its requests (a request holds up
# to 2,048 of them, so the 50,000-request limit alone would allow 100 million).
MAX_BATCH_EMBEDDING_INPUTS = 50_000


@dataclass(frozen=True, slots=True)
class LineRequest:
    """What one line asks for: the job's parameters and its own metadata."""

    params: RoutedRequest
    metadata: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class Vectors:
    """A succeeded embedding job's vectors, and the encoding its line asked them in."""

    matrix: Matrix
    encoding: Encoding


@dataclass(frozen=True, slots=True)
class EndpointKind:
    kind: str  # jobs.kind
    body: type[BaseModel]  # the endpoint's request body, as its own route validates it
    request: Callable[[Any], LineRequest]  # a validated body → the job's request
    # A succeeded job → the endpoint's response body; ``vectors`` are the job's own (only for
    # rows with ``vectors``, read in bulk by the caller).
    answer: Callable[[JobRow, Vectors | None], dict[str, Any]]
    vectors: bool = False  # answers need the job's vectors (app/embeddings/vectors.py)
    # Switchboard's flat shape (the body's fields beside ``custom_id``), when it is not just
    # ``body`` plus ``custom_id``.
    flat: type[BatchItem] | None = None
    max_inputs: int | None = None  # inputs across the batch (see ``inputs``)

    def inputs(self, params: RoutedRequest) -> int:
        """What a request counts toward ``max_inputs``: an embedding request's texts."""
        return len(params.input) if isinstance(params, EmbeddingParams) else 1


def _no_stream(body: ChatCompletionCreate | CompletionCreate) -> None:
    if body.stream:
        raise InvalidInput("a batch request cannot stream", param="stream")


def _chat_params(job: JobCreate) -> LineRequest:
    params = ChatParams.model_validate(
        job.model_dump(exclude_none=True, include=set(ChatParams.model_fields))
    )
    return LineRequest(params, job.metadata)


def _chat(body: ChatCompletionCreate) -> LineRequest:
    _no_stream(body)
    return _chat_params(body.job())


def _completion(body: CompletionCreate) -> LineRequest:
    _no_stream(body)
    return _chat_params(body.job())


class EmbeddingLineParams(EmbeddingParams):
    """An embeddings line's job: its request, and the encoding its output line is written in
    (stored with the request as ``encoding_format`` when not ``float``; the worker reads only
    the inputs and ``dimensions``)."""

    encoding_format: Encoding = "float"

    def to_request(self) -> dict[str, Any]:
        request = super().to_request()
        if self.encoding_format != "float":
            request["encoding_format"] = self.encoding_format
        return request


_EMBEDDING_FIELDS = set(EmbeddingLineParams.model_fields)


def _embedding(body: EmbeddingCreate) -> LineRequest:
    params = EmbeddingLineParams.model_validate(
        body.model_dump(exclude_none=True, include=_EMBEDDING_FIELDS)
    )
    return LineRequest(params, body.metadata)


def _chat_answer(job: JobRow, _: Vectors | None) -> dict[str, Any]:
    return completion(job).model_dump(mode="json")


def _completion_answer(job: JobRow, _: Vectors | None) -> dict[str, Any]:
    return text_completion(job).model_dump(mode="json")


def _embedding_answer(job: JobRow, vectors: Vectors | None) -> dict[str, Any]:
    assert vectors is not None  # stored in the transaction that recorded the success
    return embedding_list(job, vectors.matrix, vectors.encoding)


CHAT_ENDPOINT = "/v1/chat/completions"

ENDPOINTS: dict[str, EndpointKind] = {
    CHAT_ENDPOINT: EndpointKind("chat", ChatCompletionCreate, _chat, _chat_answer, flat=BatchItem),
    "/v1/completions": EndpointKind("chat", CompletionCreate, _completion, _completion_answer),
    "/v1/embeddings": EndpointKind(
        "embedding",
        EmbeddingCreate,
        _embedding,
        _embedding_answer,
        vectors=True,
        max_inputs=MAX_BATCH_EMBEDDING_INPUTS,
    ),
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
