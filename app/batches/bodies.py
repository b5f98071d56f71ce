"""The body of ``POST /v1/batches``: JSON (inline ``requests`` or an ``input_file_id``) or a
JSONL body with its options in the query; each becomes the options and where the requests
come from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

import orjson
from pydantic import Field, ValidationError
from pydantic.config import JsonDict

from app.batches.input import BatchInput, parse_jsonl, parse_requests, validation_error
from app.batches.kinds import (
    CHAT_ENDPOINT,
    ENDPOINTS,
    MAX_BATCH_EMBEDDING_INPUTS,
    OPENAI_ENDPOINTS,
    endpoint_kind,
)
from app.batches.service import BatchOptions
from app.completions.schemas import CompletionCreate
from app.constants import MAX_BATCH_REQUESTS, Priority
from app.embeddings.schemas import EmbeddingCreate
from app.errors import BatchTooLarge, InvalidInput
from app.jobs.schemas import (
    BatchItem,
    BatchLine,
    CustomId,
    Metadata,
    Project,
    StorableRequest,
    Strict,
    WebhookUrl,
)

JSONL_TYPES = {"application/jsonl", "application/x-ndjson", "application/x-jsonlines", "text/jsonl"}
# OpenAI's limits on how long output files are kept.
MIN_EXPIRY_S, MAX_EXPIRY_S = 3600, 30 * 24 * 3600
FileId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
Endpoint = Annotated[str, Field(min_length=1, max_length=64)]


class ExpiresAfter(Strict):
    """OpenAI's expiry policy: ``seconds`` after the file was created."""

    anchor: Literal["created_at"]
    seconds: Annotated[int, Field(ge=MIN_EXPIRY_S, le=MAX_EXPIRY_S)]


class BatchEnvelope(Strict):
    """The JSON body of ``POST /v1/batches``; each request is checked on its own after this."""

    requests: Annotated[list[Any], Field(max_length=MAX_BATCH_REQUESTS)] | None = None
    input_file_id: FileId | None = Field(
        default=None, description="An uploaded file (`POST /v1/files`, purpose `batch`)."
    )
    endpoint: Endpoint = Field(default=CHAT_ENDPOINT, description="Every request's `url`.")
    completion_window: Literal["24h"] = "24h"
    metadata: Metadata | None = None
    output_expires_after: ExpiresAfter | None = Field(
        default=None, description="How long the output and error files are kept."
    )
    priority: Priority = Priority.LOW
    project: Project | None = None
    webhook_url: WebhookUrl | None = Field(
        default=None, description="Where to POST the batch's end event (signed); not per job."
    )


class EmbeddingsBatchLine(StorableRequest):
    """One line of an OpenAI batch input file for ``/v1/embeddings``."""

    custom_id: CustomId
    method: Literal["POST"] = "POST"
    url: Literal["/v1/embeddings"]
    body: EmbeddingCreate


class CompletionsBatchLine(StorableRequest):
    """One line of an OpenAI batch input file for ``/v1/completions``."""

    custom_id: CustomId
    method: Literal["POST"] = "POST"
    url: Literal["/v1/completions"]
    body: CompletionCreate


BatchRequestDoc = BatchItem | BatchLine | EmbeddingsBatchLine | CompletionsBatchLine
_SERVED = ", ".join(f"`{e}`" for e in sorted(ENDPOINTS))


class BatchCreate(BatchEnvelope):
    """Documentation of the JSON body: inline requests (flat, or OpenAI batch lines) or the
    id of an uploaded file of OpenAI batch lines."""

    requests: Annotated[list[BatchRequestDoc], Field(max_length=MAX_BATCH_REQUESTS)] | None = Field(
        default=None,
        description="OpenAI batch lines whose `url` is the `endpoint`, or flat requests: the "
        "endpoint's body plus `custom_id`. An `/v1/embeddings` batch holds at most "
        f"{MAX_BATCH_EMBEDDING_INPUTS:,} inputs across its requests.",
    )
    endpoint: Endpoint = Field(
        default=CHAT_ENDPOINT,
        description=f"Every request's `url`; served: {_SERVED}.",
        json_schema_extra=cast(JsonDict, {"enum": sorted(OPENAI_ENDPOINTS)}),
    )


class BatchQueryOptions(Strict):
    priority: Priority = Priority.LOW
    project: Project | None = None
    webhook_url: WebhookUrl | None = None
    completion_window: Literal["24h"] = "24h"
    endpoint: Endpoint = CHAT_ENDPOINT
    metadata: Metadata | None = None


@dataclass(frozen=True, slots=True)
class BatchBody:
    """What a create call asks for; ``read`` is None when the requests are in a file."""

    options: BatchOptions
    read: BatchInput | None


def from_json(body: bytes, *, limit: int) -> BatchBody:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise InvalidInput(f"the body is not valid JSON: {err}", code="invalid_json") from None
    if (
        isinstance(raw, dict)
        and isinstance(raw.get("requests"), list)
        and len(raw["requests"]) > limit
    ):
        raise BatchTooLarge(
            f"a batch holds at most {limit} requests; this one has {len(raw['requests'])}",
            param="requests",
        )
    try:
        envelope = BatchEnvelope.model_validate(raw)
    except ValidationError as err:
        raise validation_error(err) from None
    if (envelope.requests is None) == (envelope.input_file_id is None):
        raise InvalidInput(
            "give the requests inline as `requests`, or an uploaded file as `input_file_id`",
            param="input_file_id" if envelope.requests is not None else "requests",
        )
    expiry = envelope.output_expires_after
    options = BatchOptions(
        endpoint=envelope.endpoint,
        completion_window=envelope.completion_window,
        priority=envelope.priority,
        metadata=envelope.metadata,
        project=envelope.project,
        webhook_url=envelope.webhook_url,
        input_file_id=envelope.input_file_id,
        output_expires_after_s=expiry.seconds if expiry is not None else None,
    )
    endpoint_kind(options.endpoint)
    if envelope.requests is None:
        return BatchBody(options, None)
    return BatchBody(
        options, parse_requests(envelope.requests, limit=limit, endpoint=options.endpoint)
    )


def from_jsonl(body: bytes, query: dict[str, Any], *, limit: int) -> BatchBody:
    if "metadata" in query:
        try:
            query["metadata"] = orjson.loads(query["metadata"])
        except orjson.JSONDecodeError:
            raise InvalidInput(
                "the metadata query parameter must be a JSON object", param="metadata"
            ) from None
    try:
        parsed = BatchQueryOptions.model_validate(query)
    except ValidationError as err:
        raise validation_error(err) from None
    options = BatchOptions(
        endpoint=parsed.endpoint,
        completion_window=parsed.completion_window,
        priority=parsed.priority,
        metadata=parsed.metadata,
        project=parsed.project,
        webhook_url=parsed.webhook_url,
    )
    endpoint_kind(options.endpoint)
    return BatchBody(options, parse_jsonl(body, limit=limit, endpoint=options.endpoint))
