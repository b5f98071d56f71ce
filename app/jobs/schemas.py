"""The shapes of a chat job on the wire: what callers send and what they read back."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.cache.schemas import CacheOptions, CacheOut
from app.constants import (
    MAX_CUSTOM_ID_CHARS,
    MAX_METADATA_KEY_CHARS,
    MAX_METADATA_PAIRS,
    MAX_METADATA_VALUE_CHARS,
    Priority,
)
from app.jobs.states import JobStatus
from app.registry.catalog import Capability
from app.routing.selection import Strategy
from app.validation.schemas import Validators

MAX_CHAIN = 8
MAX_MESSAGES = 2048
MAX_TOOLS = 128
MAX_DEADLINE_S = 7 * 24 * 3600.0

ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_METADATA_KEY_CHARS)]
MetadataValue = Annotated[str, StringConstraints(max_length=MAX_METADATA_VALUE_CHARS)]
CustomId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CUSTOM_ID_CHARS)]
WebhookUrl = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=MAX_METADATA_PAIRS)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def unstorable_text_at(value: Any, path: str = "") -> str | None:
    """Where ``value`` holds text Postgres cannot store (NUL, lone surrogates), if anywhere."""
    if isinstance(value, str):
        if "\x00" in value:
            return path or "(root)"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "(root)"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = unstorable_text_at(key, path) or unstorable_text_at(item, f"{path}.{key}")
            if where:
                return where.lstrip(".")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            where = unstorable_text_at(item, f"{path}[{index}]")
            if where:
                return where
    return None


# What the ledger's JSON encoder (orjson) stores exactly: 64-bit integers.
_INT_RANGE = (-(2**63), 2**64 - 1)


def unstorable_number_at(value: Any, path: str = "") -> str | None:
    """Where ``value`` holds an integer too large to store as JSON exactly, if anywhere."""
    if isinstance(value, int) and not isinstance(value, bool):
        low, high = _INT_RANGE
        return None if low <= value <= high else path or "(root)"
    if isinstance(value, dict):
        for key, item in value.items():
            where = unstorable_number_at(item, f"{path}.{key}")
            if where:
                return where.lstrip(".")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            where = unstorable_number_at(item, f"{path}[{index}]")
            if where:
                return where
    return None


class StorableRequest(Strict):
    """A top-level request: rejects text (and numbers) that could not be stored before
    anything else."""

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        where = unstorable_text_at(data)
        if where is not None:
            raise ValueError(f"text at `{where}` contains a NUL character or an invalid code point")
        where = unstorable_number_at(data)
        if where is not None:
            raise ValueError(f"the integer at `{where}` is beyond 64 bits")
        return data


class Message(Strict):
    """One chat message in the OpenAI shape; adapters translate it for other providers."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: Annotated[str, StringConstraints(max_length=256)] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: Annotated[str, StringConstraints(max_length=256)] | None = None

    @model_validator(mode="after")
    def _has_content(self) -> Message:
        if self.role == "assistant" and self.tool_calls:
            return self
        if self.content is None or self.content == "" or self.content == []:
            raise ValueError(f"a {self.role} message needs non-empty content")
        return self


class RouteOptions(Strict):
    """Filters and preferences for a ``strategy`` job (see ``app.routing.selection``)."""

    capabilities: (
        Annotated[list[Capability | Literal["function_calling"]], Field(max_length=8)] | None
    ) = Field(default=None, description="Required capabilities besides `chat`.")
    max_cost_usd: Annotated[Decimal, Field(ge=0, le=1_000_000)] | None = Field(
        default=None, description="Skip models whose estimated cost of this request is higher."
    )
    prefer_models: Annotated[list[ModelName], Field(max_length=32)] = []
    prefer_providers: Annotated[list[ModelName], Field(max_length=32)] = []
    exclude_models: Annotated[list[ModelName], Field(max_length=64)] = []
    weights: (
        dict[
            Literal["cost", "performance", "reliability", "quality"],
            Annotated[float, Field(ge=0, le=1000)],
        ]
        | None
    ) = Field(default=None, description="`balanced` strategy weights (default all equal).")


# Ways a request names its model: exactly one of them.
MODEL_SOURCES = ("model", "strategy", "policy")
PolicyName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64)]
StopSequence = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Stop = StopSequence | Annotated[list[StopSequence], Field(max_length=4)]


class RoutedRequest(StorableRequest):
    """A request that names its model: a model id or fallback list, a ``strategy`` (with
    ``route`` filters) that lets the gateway choose, or a routing ``policy``.

    ``capability`` is what every model of its chain must serve (the catalog's name)."""

    capability: ClassVar[str] = "chat"
    kind: ClassVar[str] = "chat"  # the job's ``jobs.kind``

    model: (
        ModelName | Annotated[list[ModelName], Field(min_length=1, max_length=MAX_CHAIN)] | None
    ) = Field(
        default=None,
        description="A model id, or a list of model ids to fall back through in order.",
    )
    strategy: Strategy | None = Field(
        default=None, description="Let the gateway choose the model: cheapest, fastest, ..."
    )
    route: RouteOptions | None = Field(
        default=None, description="Filters and preferences for `strategy`."
    )
    policy: PolicyName | None = Field(
        default=None,
        description="A routing policy (GET /v1/policies) whose rules pick the models from "
        "`metadata` (task_type, language, agent) and `tags`.",
    )
    tags: Annotated[list[Tag], Field(max_length=32)] | None = Field(
        default=None, description="Tags a routing policy's rules may match on."
    )
    cache: CacheOptions | None = Field(
        default=None,
        description="The response cache for this request: `mode` (`exact`, `semantic`, "
        "`off`), `ttl` seconds, `threshold` (semantic).",
    )

    @model_validator(mode="after")
    def _cache_applies(self) -> RoutedRequest:
        if self.cache is not None and self.cache.mode == "semantic" and self.capability != "chat":
            raise ValueError(
                "`cache.mode: semantic` serves chat requests; embeddings are cached exactly"
            )
        return self

    def check_one_source(self) -> None:
        """Exactly one of ``model``, ``strategy`` or ``policy`` (those the class has)."""
        sources = [name for name in MODEL_SOURCES if name in type(self).model_fields]
        given = [name for name in sources if getattr(self, name) is not None]
        if len(given) != 1:
            listed = ", ".join(f"`{n}`" for n in sources[:-1]) + f" or `{sources[-1]}`"
            raise ValueError(f"give exactly one of {listed}")
        if self.route is not None and self.strategy is None:
            raise ValueError("`route` only applies with a `strategy`")

    @field_validator("model")
    @classmethod
    def _distinct_models(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(set(value)) != len(value):
            raise ValueError("a model appears twice in the fallback list")
        return value

    @property
    def model_chain(self) -> list[str]:
        """The named models; empty for a ``strategy`` request (the gateway chooses)."""
        if self.model is None:
            return []
        return [self.model] if isinstance(self.model, str) else list(self.model)

    def to_request(self) -> dict[str, Any]:
        """What is stored on the job and replayed by the worker (everything but the models)."""
        raise NotImplementedError


class ChatParams(RoutedRequest):
    """A chat completion request: OpenAI's body, with ``model`` also taking a fallback list,
    or a ``strategy`` (and ``route`` filters) that lets the gateway choose the model."""

    messages: Annotated[list[Message], Field(min_length=1, max_length=MAX_MESSAGES)] | None = None
    prompt: Annotated[str, StringConstraints(min_length=1)] | None = Field(
        default=None, description="Shorthand for a single user message."
    )
    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    stop: Stop | None = None
    tools: Annotated[list[dict[str, Any]], Field(max_length=MAX_TOOLS)] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    seed: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None
    user: Annotated[str, StringConstraints(max_length=256)] | None = None
    validators: Validators | None = None

    @model_validator(mode="after")
    def _one_input(self) -> ChatParams:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of `messages` or `prompt`")
        self.check_one_source()
        return self

    def to_request(self) -> dict[str, Any]:
        """What is stored on the job and replayed by the worker (everything but the models)."""
        body = self.model_dump(exclude_none=True, include=_CHAT_FIELDS, mode="json")
        if self.prompt is not None:
            body["messages"] = [{"role": "user", "content": self.prompt}]
        if isinstance(body.get("stop"), str):
            body["stop"] = [body["stop"]]
        return body


_CHAT_FIELDS = set(ChatParams.model_fields) - {
    "model",
    "prompt",
    "strategy",
    "route",
    "policy",
    "tags",
    "cache",  # the cache's own directive is stored instead (app/cache/directives.py)
}


Project = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class JobOptions(Strict):
    """What a submitted job carries besides its request: priority, owner, deadline, webhook."""

    priority: Priority = Priority.NORMAL
    project: Project | None = Field(
        default=None, description="The tenant's project: for per-project budgets and reports."
    )
    metadata: Metadata | None = None
    custom_id: CustomId | None = None
    deadline_s: Annotated[float, Field(gt=0, le=MAX_DEADLINE_S)] | None = Field(
        default=None, description="Fail the job with reason `deadline` if not done by then."
    )
    webhook_url: WebhookUrl | None = Field(
        default=None, description="Where to POST `job.succeeded` / `job.failed` (signed)."
    )


class JobCreate(JobOptions, ChatParams):
    """``POST /v1/jobs``: one chat job."""


class BatchLine(StorableRequest):
    """One line of an OpenAI batch input file."""

    custom_id: CustomId
    method: Literal["POST"] = "POST"
    url: Literal["/v1/chat/completions"] = "/v1/chat/completions"
    body: ChatParams


class BatchItem(ChatParams):
    """A batch request in Switchboard's flat shape: the chat body plus ``custom_id``."""

    custom_id: CustomId | None = None
    metadata: Metadata | None = None


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    total_tokens: int


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    name: str
    arguments: str


class JobResult(BaseModel):
    text: str | None
    finish_reason: str | None
    tool_calls: list[ToolCallOut] = []
    response_id: str | None = None
    upstream_provider: str | None = Field(
        default=None, description="Who served it behind a router (OpenRouter's `provider`)."
    )


class EmbeddingItem(BaseModel):
    """One input's vector, in OpenAI's shape: floats, or base64 of little-endian float32."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingsOut(BaseModel):
    """What an embedding job produced; the vectors themselves only when asked for."""

    count: int = Field(description="Vectors: one per input, in input order.")
    dimensions: int
    data: list[EmbeddingItem] | None = Field(
        default=None, description="The vectors, with `?vectors=float` or `?vectors=base64`."
    )


class ErrorInfo(BaseModel):
    code: str
    message: str


class AttemptOut(BaseModel):
    number: int
    model: str
    provider: str
    status: Literal["succeeded", "failed", "skipped"] = Field(
        description="`skipped`: no call was made (circuit open, no rate-limit capacity)."
    )
    started_at: datetime
    finished_at: datetime
    latency_ms: int
    http_status: int | None
    error_class: str | None
    error_message: str | None
    retry_after_s: float | None
    decision: str
    decision_reason: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: str | None


class ParentRef(BaseModel):
    """The chain or ensemble a job is a step of, and where in it."""

    id: str
    kind: Literal["chain", "ensemble"]
    step_index: int
    role: str = Field(description="The step's role; `branch` or `judge` in an ensemble.")


class StepOut(BaseModel):
    """One step (or branch, or judge) of a chain or an ensemble: a job of its own."""

    id: str
    index: int
    role: str
    status: JobStatus
    model: list[str] = Field(description="The step's models, in fallback order.")
    served_model: str | None
    provider: str | None
    result: JobResult | None
    usage: Usage | None
    cost_usd: str | None
    latency_ms: int | None
    attempt_count: int
    error: ErrorInfo | None
    created_at: datetime
    finished_at: datetime | None


class JobOut(BaseModel):
    """A job as callers see it: state, result, where it ran, what it cost."""

    id: str
    object: Literal["job"] = "job"
    kind: Literal["chat", "embedding", "chain", "ensemble"] = "chat"
    status: JobStatus
    priority: Priority
    batch_id: str | None
    custom_id: str | None
    model: list[str] = Field(description="The requested model and its fallbacks, in order.")
    routing: dict[str, Any] | None = Field(
        default=None,
        description="For a `strategy` or `policy` job: the policy and rule, strategy, chosen "
        "model, chain, estimated cost and latency, and the reason.",
    )
    served_model: str | None
    provider: str | None
    result: JobResult | None
    embeddings: EmbeddingsOut | None = Field(
        default=None,
        description="An embedding job's vectors (count and size; the vectors on request).",
    )
    usage: Usage | None
    cost_usd: str | None = Field(description="Exact decimal, USD.")
    latency_ms: int | None
    attempt_count: int
    attempts: list[AttemptOut] | None = None
    error: ErrorInfo | None
    project: str | None = None
    metadata: dict[str, str]
    cache: CacheOut | None = Field(
        default=None,
        description="The response cache: a hit (served from the answer of `source_job_id`, "
        "no provider call, cost 0, `cost_saved_usd`) or a miss (it ran).",
    )
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    parent: ParentRef | None = Field(
        default=None, description="For a step of a chain or an ensemble: which, and where."
    )
    steps: list[StepOut] | None = Field(
        default=None,
        description="A chain's steps or an ensemble's branches (and judge), in order; their "
        "tokens and cost add up to the job's.",
    )
    synthesis: dict[str, Any] | None = Field(
        default=None,
        description="How a chain or an ensemble reached its answer: the output step and "
        "skipped ones; the synthesizer, votes, winner, judge.",
    )


class JobAccepted(BaseModel):
    id: str
    object: Literal["job"] = "job"
    status: JobStatus
    created: bool = Field(description="False when an Idempotency-Key matched an earlier job.")


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobOut]
    first_id: str | None
    last_id: str | None
    has_more: bool
