"""What callers send to run a chain or an ensemble, and what they get back at once.

A chain (``POST /v1/chains``) names a shipped chain or defines its steps; each step routes
like a job (``model`` or fallback list, ``policy`` or ``strategy``) and has a prompt template
(``app.orchestration.templates``). An ensemble (``POST /v1/ensembles``) sends one chat
request to several branches and combines their answers with a synthesizer. Shapes are
checked here; names (models, policies, template placeholders) are checked against the
registry and the chain's own steps when it is planned (``app.orchestration.plans``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from app.jobs.schemas import (
    MAX_MESSAGES,
    JobOptions,
    Message,
    Metadata,
    ModelName,
    PolicyName,
    RoutedRequest,
    Stop,
    StorableRequest,
    Strict,
)
from app.jobs.states import JobStatus
from app.validation.compile import compile_pattern
from app.validation.schemas import MAX_PATTERN_CHARS, Validators

MAX_STEPS = 8
MAX_BRANCHES = 8
MAX_TEMPLATE_CHARS = 100_000

Role = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
]
Template = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEMPLATE_CHARS)]
Models = ModelName | Annotated[list[ModelName], Field(min_length=1, max_length=8)]


class Sampling(Strict):
    """The chat parameters a step, a branch or a judge's call is made with."""

    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    stop: Stop | None = None
    response_format: dict[str, Any] | None = None
    seed: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None
    validators: Validators | None = None


SAMPLING_FIELDS = frozenset(Sampling.model_fields)
ROUTING_FIELDS = frozenset({"model", "strategy", "route", "policy", "tags"})


class ChainStep(Sampling, RoutedRequest):
    """One step: who does it (``role``), on which models, asked what (``prompt``)."""

    role: Role = Field(description="Unique in the chain; later prompts use `{steps.<role>}`.")
    prompt: Template = Field(
        description="The step's user message: `{input}`, `{previous}`, `{steps.<role>}` of "
        "earlier steps; `{{input}}` for a literal brace. Other braces are text."
    )
    system: Template | None = Field(default=None, description="A system message, templated too.")
    on_failure: Literal["fail", "skip"] = Field(
        default="fail",
        description="After its own retries and fallbacks: fail the chain, or go on with an "
        "empty output for this step.",
    )
    metadata: Metadata | None = Field(
        default=None, description="Added to the chain's metadata for this step (policies)."
    )

    @model_validator(mode="after")
    def _routed(self) -> ChainStep:
        self.check_one_source()
        return self


class ChainSpec(Strict):
    """A chain's definition: its steps, in order."""

    description: Annotated[str, StringConstraints(max_length=1000)] = ""
    steps: Annotated[list[ChainStep], Field(min_length=1, max_length=MAX_STEPS)]
    output: Role | None = Field(
        default=None, description="The role whose output is the chain's (default: the last)."
    )
    task_types: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default=[], description="`metadata.task_type` values this chain is chosen for."
    )

    @model_validator(mode="after")
    def _roles(self) -> ChainSpec:
        roles = [step.role for step in self.steps]
        twice = sorted({role for role in roles if roles.count(role) > 1})
        if twice:
            raise ValueError(f"each step needs its own role; {', '.join(twice)} appears twice")
        if self.output is not None and self.output not in roles:
            raise ValueError(f"`output` names {self.output!r}, which is not a step's role")
        return self


def _chain_form(value: Any) -> str:
    return "name" if isinstance(value, str) else "steps"


# A shipped chain's name, or a definition; errors name the form meant (``chain.steps``).
ChainRef = Annotated[
    Annotated[PolicyName, Tag("name")] | Annotated[ChainSpec, Tag("steps")],
    Discriminator(_chain_form),
]


class ChainCreate(JobOptions, StorableRequest):
    """``POST /v1/chains``: run a shipped chain by name, or one defined here, on ``input``."""

    chain: ChainRef | None = Field(
        default=None,
        description="A shipped chain's name (GET /v1/chains/definitions) or a definition; "
        "omitted: the one for `metadata.task_type`, else `default`.",
    )
    input: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="What the chain works on: `{input}` in its prompts."
    )
    models: dict[Role, Models] | None = Field(
        default=None,
        description="Per role, the model (or fallback list) to use instead of the step's own "
        "model, policy or strategy: a shipped chain on the models you have.",
    )


class Branch(RoutedRequest):
    """One branch of an ensemble: a model (or fallback list), policy or strategy."""

    validators: Validators | None = Field(
        default=None, description="Checked on this branch's answer, after the ensemble's own."
    )

    @model_validator(mode="after")
    def _routed(self) -> Branch:
        self.check_one_source()
        return self


class Judge(Sampling, RoutedRequest):
    """The judge of a ``judge`` ensemble: a step of its own, given the branches' answers."""

    mode: Literal["merge", "pick"] = Field(
        default="merge",
        description="`merge`: the judge's answer is the ensemble's; `pick`: the judge names "
        "the best answer's number and that branch's answer is the ensemble's.",
    )
    prompt: Template | None = Field(
        default=None, description="`{input}` (the request) and `{answers}` (numbered)."
    )
    system: Template | None = None

    @model_validator(mode="after")
    def _routed(self) -> Judge:
        self.check_one_source()
        return self


Synthesizer = Literal["first_success", "majority", "judge"]


class EnsembleCreate(Sampling, JobOptions, StorableRequest):
    """``POST /v1/ensembles``: one chat request to several branches in parallel, combined."""

    messages: Annotated[list[Message], Field(min_length=1, max_length=MAX_MESSAGES)] | None = None
    prompt: Annotated[str, StringConstraints(min_length=1)] | None = Field(
        default=None, description="Shorthand for a single user message."
    )
    models: Annotated[list[Models], Field(min_length=2, max_length=MAX_BRANCHES)] | None = Field(
        default=None, description="One branch per entry: a model, or a fallback list."
    )
    branches: Annotated[list[Branch], Field(min_length=2, max_length=MAX_BRANCHES)] | None = None
    synthesizer: Synthesizer = Field(
        description="`first_success`: the first answer; `majority`: the answer most branches "
        "agree on; `judge`: a judge model picks or merges."
    )
    quorum: Annotated[int, Field(ge=1, le=MAX_BRANCHES)] | None = Field(
        default=None,
        description="`majority`: votes the winning answer needs (default: more than half of "
        "the branches); `judge`: answers needed before judging (default 1).",
    )
    vote_pattern: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATTERN_CHARS)] | None
    ) = Field(
        default=None,
        description="`majority`: an RE2 pattern; its first group (or whole match) in each "
        "answer is that branch's vote. Without it, the whole answer is (normalised).",
    )
    hedge_after_s: Annotated[float, Field(gt=0, le=3600)] | None = Field(
        default=None,
        description="`first_success`: start branch n only after n × this many seconds (or "
        "once every earlier branch failed); branches not started are never billed.",
    )
    judge: Judge | None = None

    @field_validator("models")
    @classmethod
    def _branches(cls, value: list[Models] | None) -> list[Models] | None:
        """Each entry must make a branch (``branch_list``): checked here, not when planned."""
        for index, entry in enumerate(value or []):
            try:
                Branch(model=entry)
            except ValidationError as err:
                reason = err.errors()[0]["msg"].removeprefix("Value error, ")
                raise ValueError(f"branch {index}: {reason}") from None
        return value

    @field_validator("vote_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_pattern(value)  # raises ValueError saying what is wrong
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EnsembleCreate:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of `messages` or `prompt`")
        if (self.models is None) == (self.branches is None):
            raise ValueError("give exactly one of `models` or `branches`")
        count = len(self.models or self.branches or [])
        if (self.synthesizer == "judge") != (self.judge is not None):
            raise ValueError("a `judge` is given exactly when the synthesizer is `judge`")
        if self.quorum is not None:
            if self.synthesizer == "first_success":
                raise ValueError("`quorum` applies to `majority` and `judge` only")
            if self.quorum > count:
                raise ValueError(f"`quorum` {self.quorum} is more than the {count} branches")
        if self.vote_pattern is not None and self.synthesizer != "majority":
            raise ValueError("`vote_pattern` applies to `majority` only")
        if self.hedge_after_s is not None and self.synthesizer != "first_success":
            raise ValueError("`hedge_after_s` applies to `first_success` only")
        return self

    def branch_list(self) -> list[Branch]:
        if self.branches is not None:
            return self.branches
        return [Branch(model=models) for models in self.models or []]


class OrchestrationAccepted(Strict):
    id: str
    object: Literal["job"] = "job"
    kind: Literal["chain", "ensemble"]
    status: JobStatus
    steps: list[str] = Field(description="The ids of the step jobs created so far.")
    created: bool = Field(description="False when an Idempotency-Key matched an earlier one.")
