"""The shapes of an embedding job: what callers send (OpenAI's ``/v1/embeddings`` body, or a
job's), and what ``POST /v1/embeddings`` answers."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from app.constants import Priority
from app.jobs.schemas import EmbeddingItem, JobOptions, Metadata, RoutedRequest
from app.routing.model_names import route_from_model_name

# OpenAI's own limits on one request: 2,048 inputs; the character caps keep a stored job
# (and its JSONB row) bounded: no embedding model reads anywhere near 200k characters.
MAX_INPUTS = 2048
MAX_INPUT_CHARS = 200_000
MAX_TOTAL_CHARS = 4_000_000
MAX_DIMENSIONS = 8192

EmbeddingInput = Annotated[str, StringConstraints(min_length=1, max_length=MAX_INPUT_CHARS)]
_TEXT_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_INPUT_CHARS}
# Stored and validated as a list (so errors name `input[3]`, not a union branch); documented
# as OpenAI's string-or-list.
Inputs = Annotated[
    list[EmbeddingInput],
    Field(min_length=1, max_length=MAX_INPUTS),
    WithJsonSchema(
        {
            "anyOf": [
                _TEXT_SCHEMA,
                {"type": "array", "items": _TEXT_SCHEMA, "minItems": 1, "maxItems": MAX_INPUTS},
            ]
        }
    ),
]


class EmbeddingParams(RoutedRequest):
    """An embeddings request: OpenAI's ``input`` and ``dimensions``, with ``model`` also taking
    a fallback list, or a ``strategy`` / ``policy`` restricted to embedding models."""

    capability: ClassVar[str] = "embeddings"
    kind: ClassVar[str] = "embedding"

    input: Inputs = Field(
        description="The text to embed, or up to 2,048 texts (one vector each, in order)."
    )
    dimensions: Annotated[int, Field(ge=1, le=MAX_DIMENSIONS)] | None = Field(
        default=None,
        description="Shorter vectors, for models that support it (text-embedding-3, Gemini).",
    )

    @field_validator("input", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        tokens = isinstance(value, list) and any(isinstance(item, int | list) for item in value)
        if tokens:
            raise ValueError(
                "token arrays are not supported: send the text (models behind this gateway "
                "use different tokenizers)"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> EmbeddingParams:
        self.check_one_source()
        if sum(len(text) for text in self.input) > MAX_TOTAL_CHARS:
            raise ValueError(f"the inputs hold more than {MAX_TOTAL_CHARS:,} characters together")
        return self

    def to_request(self) -> dict[str, Any]:
        """What is stored on the job and replayed by the worker: the inputs as a list."""
        request: dict[str, Any] = {"input": self.input}
        if self.dimensions is not None:
            request["dimensions"] = self.dimensions
        return request


class EmbeddingJobCreate(JobOptions, EmbeddingParams):
    """One embedding job, as an endpoint or a batch line submits it."""


class EmbeddingCreate(EmbeddingParams):
    """OpenAI's ``/v1/embeddings`` body. ``model`` also takes a fallback list,
    ``"policy:<name>"`` or ``"strategy:<cost|performance|...>"``."""

    encoding_format: Literal["float", "base64"] = Field(
        default="float",
        description="`base64`: each vector as little-endian float32 bytes (what OpenAI's SDKs "
        "ask for and decode).",
    )
    user: Annotated[str, StringConstraints(max_length=256)] | None = Field(
        default=None, description="Accepted for compatibility; not sent to providers."
    )
    metadata: Metadata | None = None

    @model_validator(mode="before")
    @classmethod
    def _routed_model(cls, data: Any) -> Any:
        return route_from_model_name(data)

    def job(self) -> EmbeddingJobCreate:
        """The job this request becomes: ``high`` priority (a caller is waiting)."""
        body = self.model_dump(exclude_none=True, exclude={"encoding_format", "user"})
        body["priority"] = Priority.HIGH
        return EmbeddingJobCreate.model_validate(body)


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    """OpenAI's answer: one item per input, in input order; ``model`` is the model that
    served."""

    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingUsage
