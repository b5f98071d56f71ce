"""Rule matching, pure: which policy and rule a request gets, and the model order it yields."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from app.errors import InvalidInput, NotFound
from app.policies.rules import Policy, resolve
from app.policies.schemas import Rule


def policy(name: str, priority: int, *rules: dict[str, Any], enabled: bool = True) -> Policy:
    return Policy(name, priority, enabled, tuple(Rule.model_validate(r) for r in rules))


def rule(models: list[str], **match: Any) -> dict[str, Any]:
    return {"match": match, "route": {"models": models}}


def route_for(
    policies: list[Policy],
    name: str | None = None,
    tags: list[str] | None = None,
    tenant: str = "default",
    seed: int = 0,
    **metadata: str,
) -> Any:
    return resolve(
        policies,
        name=name,
        request_metadata=metadata,
        tags=tags or [],
        tenant_id=tenant,
        rand=random.Random(seed),
    )


def test_the_highest_priority_policy_with_a_matching_rule_wins() -> None:
    policies = [
        policy("low", 1, rule(["m-low"])),
        policy("high", 50, rule(["m-high"], language="python")),
        policy("mid", 10, rule(["m-mid"], language="python"), rule(["m-mid-default"])),
        policy("off", 99, rule(["m-off"]), enabled=False),
    ]
    python = route_for(policies, language="python")
    assert (python.policy, python.rule_index, python.models) == ("high", 0, ("m-high",))
    assert python.reason == "policy high rule 0 (language=python)"

    go = route_for(policies, language="go")  # high has no rule for it; mid's default catches it
    assert (go.policy, go.rule_index, go.models) == ("mid", 1, ("m-mid-default",))
    assert go.reason == "policy mid rule 1 (default)"

    # Named: only that policy is consulted, whatever the priorities.
    assert route_for(policies, name="low", language="python").models == ("m-low",)


def test_every_condition_of_a_rule_must_hold() -> None:
    policies = [
        policy(
            "p",
            0,
            rule(
                ["strict"],
                task_type="code_generation",
                language="Python",
                agent="SWE Agent",
                tenant="acme",
                tags=["prod", "eu"],
            ),
            rule(["fallback"]),
        )
    ]
    full = {"task_type": "code_generation", "language": "python", "agent": "swe agent"}
    hit = route_for(policies, tags=["eu", "prod", "extra"], tenant="acme", **full)
    assert hit.models == ("strict",)  # metadata compared without regard to case
    assert hit.reason.startswith("policy p rule 0 (task_type=code_generation, language=Python")
    misses = [
        route_for(policies, tags=["eu", "prod"], tenant="other", **full),  # tenant
        route_for(policies, tags=["eu"], tenant="acme", **full),  # one tag missing
        route_for(policies, tags=["eu", "prod"], tenant="acme", **{**full, "agent": "x"}),
        route_for(
            policies,
            tags=["eu", "prod"],
            tenant="acme",
            task_type="code_generation",
            language="python",
        ),  # agent absent
    ]
    assert [m.models for m in misses] == [("fallback",)] * 4


def test_first_matching_rule_within_a_policy_wins() -> None:
    policies = [
        policy("p", 0, rule(["first"], language="python"), rule(["second"], language="python"))
    ]
    assert route_for(policies, language="python").rule_index == 0


def test_models_come_in_order_then_fallbacks_without_repeats() -> None:
    policies = [
        policy(
            "p",
            0,
            {
                "route": {
                    "models": ["a", "b", "a"],
                    "fallbacks": ["b", "c", "d", "c"],
                    "strategy": "reliability",
                    "max_cost_usd": "0.25",
                }
            },
        )
    ]
    got = route_for(policies)
    assert got.models == ("a", "b", "c", "d")
    assert got.strategy == "reliability"
    assert str(got.max_cost_usd) == "0.25"


def test_weights_split_traffic_as_configured() -> None:
    policies = [
        policy(
            "ab",
            0,
            {
                "route": {
                    "models": ["model-a", "model-b", "model-c"],
                    "fallbacks": ["model-z"],
                    "weights": {"model-a": 90, "model-b": 10},
                }
            },
        )
    ]
    rand = random.Random(1234)
    draws = 10_000
    firsts: Counter[str] = Counter()
    for _ in range(draws):
        got = resolve(policies, name="ab", request_metadata={}, tags=[], tenant_id="t", rand=rand)
        assert got is not None
        firsts[got.models[0]] += 1
        # the pick leads; the rest keep their order; fallbacks last; nothing twice
        rest = [m for m in ("model-a", "model-b", "model-c") if m != got.models[0]]
        assert got.models == (got.models[0], *rest, "model-z")
    assert firsts["model-c"] == 0  # unweighted models are never picked first
    assert abs(firsts["model-a"] / draws - 0.90) < 0.02
    assert abs(firsts["model-b"] / draws - 0.10) < 0.02


def test_the_weighted_pick_is_reproducible_with_a_seed_and_named_in_the_reason() -> None:
    policies = [policy("ab", 0, {"route": {"models": ["x", "y"], "weights": {"x": 1, "y": 1}}})]
    runs = {route_for(policies, seed=7).models for _ in range(5)}
    assert len(runs) == 1
    got = route_for(policies, seed=7)
    assert got.reason.endswith(f"weighted pick {got.models[0]} (50%)")


def test_a_named_policy_must_exist_be_enabled_and_match() -> None:
    policies = [
        policy("p", 0, rule(["a"], language="python")),
        policy("off", 0, rule(["b"]), enabled=False),
    ]
    with pytest.raises(NotFound) as missing:
        route_for(policies, name="nope")
    assert missing.value.code == "policy_not_found"
    with pytest.raises(InvalidInput) as no_rule:
        route_for(policies, name="p", language="rust")
    assert no_rule.value.code == "no_matching_rule"
    with pytest.raises(InvalidInput) as disabled:
        route_for(policies, name="off")
    assert disabled.value.code == "policy_disabled"
    # Unnamed: no match anywhere is not an error, just no route.
    assert route_for(policies, language="rust") is None
