"""Which route a request gets: pure matching of request metadata against routing policies.

No I/O here, so job submission, the dry-run endpoint and tests all share one answer. Policies
are tried by priority (highest first, then by name for a stable order); within a policy the
first rule whose every condition holds wins.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from app.errors import InvalidInput, NotFound
from app.policies.schemas import Rule, RuleMatch


@dataclass(frozen=True, slots=True)
class Policy:
    """A policy as the matcher sees it (rules already validated against the registry)."""

    name: str
    priority: int
    enabled: bool
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class PolicyRoute:
    """What a policy decided for one request: the models to try, in order, and why."""

    policy: str
    rule_index: int
    models: tuple[str, ...]
    strategy: str | None
    max_cost_usd: Decimal | None
    reason: str
    weighted: bool = False  # the first model was drawn by the rule's traffic weights


def by_priority(policies: Iterable[Policy]) -> list[Policy]:
    return sorted(policies, key=lambda p: (-p.priority, p.name))


def _same(expected: str | None, actual: str | None) -> bool:
    return expected is None or (actual is not None and expected.casefold() == actual.casefold())


def matches(
    match: RuleMatch, metadata: Mapping[str, str], tags: Iterable[str], tenant_id: str
) -> bool:
    """Every condition the rule gives holds for this request."""
    return (
        _same(match.task_type, metadata.get("task_type"))
        and _same(match.language, metadata.get("language"))
        and _same(match.agent, metadata.get("agent"))
        and (match.tenant is None or match.tenant == tenant_id)
        and set(match.tags) <= set(tags)
    )


def describe(match: RuleMatch) -> str:
    """The conditions of a rule as ``k=v, ...``; ``default`` for a rule with none."""
    parts = [
        f"{key}={value}"
        for key, value in (
            ("task_type", match.task_type),
            ("language", match.language),
            ("agent", match.agent),
            ("tenant", match.tenant),
        )
        if value is not None
    ]
    if match.tags:
        parts.append("tags=" + "+".join(match.tags))
    return ", ".join(parts) or "default"


def ordered_models(rule: Rule, rand: random.Random) -> tuple[tuple[str, ...], str | None]:
    """The rule's models in the order to try them, and the weighted pick if there was one:
    the pick first, then the other preferred models, then the fallbacks; no repeats."""
    route = rule.route
    picked: str | None = None
    if route.weights:
        names = list(route.weights)
        picked = rand.choices(names, weights=[route.weights[n] for n in names])[0]
    chain = [picked] if picked else []
    chain += route.models + route.fallbacks
    return tuple(dict.fromkeys(chain)), picked


def _route(policy: Policy, index: int, rule: Rule, rand: random.Random) -> PolicyRoute:
    models, picked = ordered_models(rule, rand)
    reason = f"policy {policy.name} rule {index} ({describe(rule.match)})"
    if picked is not None and rule.route.weights:
        share = rule.route.weights[picked] / sum(rule.route.weights.values())
        reason += f", weighted pick {picked} ({share:.0%})"
    return PolicyRoute(
        policy=policy.name,
        rule_index=index,
        models=models,
        strategy=rule.route.strategy,
        max_cost_usd=rule.route.max_cost_usd,
        reason=reason,
        weighted=picked is not None and bool(rule.route.weights),
    )


def _first_match(
    policy: Policy, metadata: Mapping[str, str], tags: Sequence[str], tenant_id: str
) -> tuple[int, Rule] | None:
    for index, rule in enumerate(policy.rules):
        if matches(rule.match, metadata, tags, tenant_id):
            return index, rule
    return None


def resolve(
    policies: Iterable[Policy],
    *,
    name: str | None,
    request_metadata: Mapping[str, str],
    tags: Sequence[str],
    tenant_id: str,
    rand: random.Random,
) -> PolicyRoute | None:
    """The route for a request: from the policy called ``name``, or (``None``) from the
    highest-priority enabled policy with a matching rule; ``None`` if no policy has one.

    A named policy must exist (``policy_not_found``), be enabled (``policy_disabled``) and have
    a matching rule (``no_matching_rule``): a caller who asks for a policy gets it or an error,
    never a silent default."""
    if name is not None:
        policy = next((p for p in policies if p.name == name), None)
        if policy is None:
            raise NotFound(
                f"no routing policy {name!r}: see GET /v1/policies",
                code="policy_not_found",
                param="policy",
            )
        if not policy.enabled:
            raise InvalidInput(
                f"routing policy {name!r} is disabled", code="policy_disabled", param="policy"
            )
        found = _first_match(policy, request_metadata, tags, tenant_id)
        if found is None:
            raise InvalidInput(
                f"no rule of routing policy {name!r} matches this request's metadata and tags",
                code="no_matching_rule",
                param="metadata",
            )
        return _route(policy, *found, rand)
    for policy in by_priority(p for p in policies if p.enabled):
        found = _first_match(policy, request_metadata, tags, tenant_id)
        if found is not None:
            return _route(policy, *found, rand)
    return None
