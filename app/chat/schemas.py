"""OpenAI's ``/v1/chat/completions`` request and response shapes, mapped onto a chat job."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from app.constants import Priority
from app.jobs.schemas import ChatParams, JobCreate, Metadata, Strict
from app.relay.publisher import STREAM_FLAG
from app.routing.model_names import route_from_model_name

# Fields that only shape this endpoint's answer: they are not part of the job.
_ANSWER_FIELDS = {"stream", "stream_options", "n", "max_completion_tokens"}


class StreamOptions(Strict):
    include_usage: bool = False


class ChatCompletionCreate(ChatParams):
    """OpenAI's request body. ``model`` also takes a fallback list, ``"policy:<name>"`` (a
    routing policy) or ``"strategy:<cost|performance|...>"`` (the gateway chooses)."""

    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Literal[1] | None = Field(default=None, description="Only one choice is generated.")
    max_completion_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        default=None, description="OpenAI's newer name for `max_tokens`."
    )
    metadata: Metadata | None = None

    @model_validator(mode="before")
    @classmethod
    def _routed_model(cls, data: Any) -> Any:
        """``model: "policy:x"`` / ``"strategy:y"`` become the job's ``policy`` / ``strategy``:
        OpenAI's SDKs have no other field to carry them."""
        return route_from_model_name(data)

    @model_validator(mode="after")
    def _one_limit(self) -> ChatCompletionCreate:
        if self.max_tokens is not None and self.max_completion_tokens is not None:
            raise ValueError("give `max_tokens` or `max_completion_tokens`, not both")
        return self

    def job(self) -> JobCreate:
        """The job this request becomes: same body, ``high`` priority (a caller is waiting);
        with ``stream``, a job whose call streams (``StreamedJob``) — unless it has validators:
        an answer is relayed only once it passed them, so it is sent whole when the job ends."""
        body = self.model_dump(exclude_none=True, exclude=_ANSWER_FIELDS)
        if self.max_completion_tokens is not None:
            body["max_tokens"] = self.max_completion_tokens
        body["priority"] = Priority.HIGH
        live = self.stream and not self.validators
        return (StreamedJob if live else JobCreate).model_validate(body)

    @property
    def usage_in_stream(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


class StreamedJob(JobCreate):
    """A chat job whose caller reads the answer while it is generated: its stored request
    asks the worker to make the call streaming and publish the deltas (``app.relay``)."""

    def to_request(self) -> dict[str, Any]:
        return {**super().to_request(), STREAM_FLAG: True}


class FunctionCall(BaseModel):
    name: str
    arguments: str


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None
    logprobs: None = None


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = PromptTokensDetails()


class ChatCompletion(BaseModel):
    """OpenAI's ``chat.completion``; ``id`` is ``chatcmpl-<job id>``."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage | None
    system_fingerprint: None = None


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None
    param: str | None = None
    job_id: str | None = None


class OpenAIErrorBody(BaseModel):
    """OpenAI's error shape; ``code`` is also the gateway's stable code."""

    error: OpenAIErrorDetail
