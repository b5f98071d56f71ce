"""OpenAI's legacy ``/v1/completions`` request and ``text_completion`` answer, mapped onto a
chat job whose one user message is the prompt."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from app.chat.schemas import CompletionUsage, StreamedJob, StreamOptions
from app.constants import Priority
from app.jobs.schemas import JobCreate, Metadata, RoutedRequest, Stop
from app.routing.model_names import route_from_model_name

# OpenAI's default for this endpoint (its chat endpoint has none).
DEFAULT_MAX_TOKENS = 16


class CompletionCreate(RoutedRequest):
    """OpenAI's ``/v1/completions`` body: one prompt, one choice, no logprobs or echo. ``model``
    also takes a fallback list, ``"policy:<name>"`` or ``"strategy:<name>"``."""

    prompt: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="The prompt, sent to the model as one user message."
    )
    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)] = DEFAULT_MAX_TOKENS
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    stop: Stop | None = None
    seed: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None
    user: Annotated[str, StringConstraints(max_length=256)] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Literal[1] | None = Field(default=None, description="Only one choice is generated.")
    best_of: Literal[1] | None = Field(default=None, description="Only one choice is generated.")
    echo: Literal[False] | None = Field(default=None, description="The prompt is not echoed.")
    logprobs: None = Field(default=None, description="Log probabilities are not returned.")
    suffix: None = Field(default=None, description="Insertion (a suffix) is not supported.")
    metadata: Metadata | None = None

    @model_validator(mode="before")
    @classmethod
    def _routed_model(cls, data: Any) -> Any:
        return route_from_model_name(data)

    @field_validator("prompt", mode="before")
    @classmethod
    def _one_prompt(cls, value: Any) -> Any:
        """OpenAI also takes a list of prompts (one choice each) or token ids: one text only."""
        if isinstance(value, list):
            if len(value) == 1 and isinstance(value[0], str):
                return value[0]
            if value and all(isinstance(v, str) for v in value):
                raise ValueError("one prompt per request: send each prompt on its own")
            raise ValueError("token arrays are not supported: send the prompt's text")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> CompletionCreate:
        self.check_one_source()
        return self

    def job(self) -> JobCreate:
        """The chat job this request becomes: the prompt as one user message, ``high``
        priority (a caller is waiting); with ``stream``, a job whose call streams."""
        body = self.model_dump(
            exclude_none=True,
            exclude={"stream", "stream_options", "n", "best_of", "echo", "logprobs", "suffix"},
        )
        body["priority"] = Priority.HIGH
        return (StreamedJob if self.stream else JobCreate).model_validate(body)

    @property
    def usage_in_stream(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


FinishReason = Literal["stop", "length", "content_filter"]


class TextChoice(BaseModel):
    text: str
    index: int = 0
    logprobs: None = None
    finish_reason: FinishReason


class TextCompletion(BaseModel):
    """OpenAI's ``text_completion``; ``id`` is ``cmpl-<job id>``."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[TextChoice]
    usage: CompletionUsage | None
    system_fingerprint: None = None
