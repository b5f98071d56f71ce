"""Routing policies on the wire: what operators write and what callers read back.

Pydantic checks the shape (a 400 naming the field); ``check_policy`` in ``store.py`` then
checks what needs the registry (model names) and the cross-field rules (weights, chain length).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from app.jobs.schemas import Metadata, ModelName, StorableRequest, Strict

Strategy = Literal["cost", "performance", "reliability", "quality", "balanced"]
STRATEGIES: tuple[str, ...] = ("cost", "performance", "reliability", "quality", "balanced")

PolicyName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
Condition = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100)]
MAX_RULES = 100
MAX_TAGS = 32


class RuleMatch(Strict):
    """Conditions on a request; every one given must hold. None given: the default rule.

    ``task_type``, ``language`` and ``agent`` are read from the job's metadata and compared
    without regard to case; ``tenant`` is the submitting tenant's id; ``tags`` must all be
    among the request's tags."""

    task_type: Condition | None = None
    language: Condition | None = None
    agent: Condition | None = None
    tenant: Condition | None = None
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] = []


class RuleRoute(Strict):
    """Where a matching request goes: ``models`` in order of preference, then ``fallbacks``."""

    models: Annotated[list[ModelName], Field(min_length=1, max_length=8)]
    fallbacks: Annotated[list[ModelName], Field(max_length=8)] = []
    strategy: Strategy | None = Field(
        default=None, description="How the model selector should weigh the candidates."
    )
    weights: dict[ModelName, Annotated[float, Field(gt=0, le=1_000_000)]] | None = Field(
        default=None,
        description='A traffic split over some of `models` for A/B tests: {"a": 90, "b": 10}.',
    )
    max_cost_usd: Annotated[Decimal, Field(gt=0, le=1_000_000, decimal_places=12)] | None = None


class Rule(Strict):
    match: RuleMatch = RuleMatch()
    route: RuleRoute


class PolicyFields(StorableRequest):
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    priority: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] = 0
    enabled: bool = True
    rules: Annotated[list[Rule], Field(min_length=1, max_length=MAX_RULES)]


class PolicyCreate(PolicyFields):
    """``POST /v1/policies``: a new policy; its name is its id."""

    name: PolicyName


class PolicyReplace(PolicyFields):
    """``PUT /v1/policies/{name}``: the whole policy; ``name``, if given, must be the path's."""

    name: PolicyName | None = None


class PolicyOut(BaseModel):
    id: str
    object: Literal["routing_policy"] = "routing_policy"
    description: str
    priority: int
    enabled: bool
    rules: list[Rule]
    created_at: datetime
    updated_at: datetime


class PolicyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PolicyOut]


class ResolveRequest(StorableRequest):
    """A dry run: the metadata, tags and tenant a job would be submitted with."""

    metadata: Metadata = {}
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] = []
    tenant_id: Condition | None = Field(
        default=None, description="Admin only: resolve as this tenant (default: the caller's)."
    )
    seed: int | None = Field(
        default=None, description="Seeds the weighted pick, to make it reproducible."
    )


class PolicyRouteOut(BaseModel):
    object: Literal["policy_route"] = "policy_route"
    policy: str
    rule: int
    models: list[str]
    strategy: str | None
    max_cost_usd: str | None
    reason: str
