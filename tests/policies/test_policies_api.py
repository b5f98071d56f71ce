"""Routing policies through the real API: CRUD, validation that writes nothing, dry runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text


def _policy(name: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "description": "test policy",
        "priority": 5,
        "rules": [
            {
                "match": {"task_type": "summarize", "language": "de"},
                "route": {
                    "models": ["sim-claude-sonnet", "sim-gpt-large"],
                    "fallbacks": ["sim-gpt-mini"],
                    "strategy": "quality",
                    "max_cost_usd": "0.05",
                },
            },
            {"route": {"models": ["sim-gpt-mini"], "fallbacks": ["sim-claude-haiku"]}},
        ],
    }
    body.update(changes)
    return body


@pytest.fixture
def name(api: httpx.Client) -> Iterator[str]:
    """A fresh policy name, deleted after the test whatever happened to it."""
    value = f"t-{uuid.uuid4().hex[:10]}"
    yield value
    api.delete(f"/v1/policies/{value}")


def _rows(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM routing_policies WHERE name = :n"), {"n": name}
        ).scalar_one()
    return int(count)


def test_create_read_list_and_delete(api: httpx.Client, name: str) -> None:
    created = api.post("/v1/policies", json=_policy(name))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"] == name
    assert body["object"] == "routing_policy"
    assert body["priority"] == 5
    assert body["enabled"] is True
    assert body["rules"][0]["route"]["models"] == ["sim-claude-sonnet", "sim-gpt-large"]
    assert body["rules"][1]["match"] == {
        "task_type": None,
        "language": None,
        "agent": None,
        "tenant": None,
        "tags": [],
    }
    assert body["created_at"]
    assert body["updated_at"]

    assert api.get(f"/v1/policies/{name}").json() == body
    listed = api.get("/v1/policies").json()
    assert listed["object"] == "list"
    priorities = [p["priority"] for p in listed["data"]]
    assert priorities == sorted(priorities, reverse=True)
    assert name in [p["id"] for p in listed["data"]]

    again = api.post("/v1/policies", json=_policy(name, priority=1))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "policy_exists"
    assert api.get(f"/v1/policies/{name}").json()["priority"] == 5  # untouched

    assert api.delete(f"/v1/policies/{name}").status_code == 204
    gone = api.get(f"/v1/policies/{name}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "policy_not_found"
    assert api.delete(f"/v1/policies/{name}").status_code == 404


def test_aliases_are_stored_as_model_ids(api: httpx.Client, name: str) -> None:
    body = _policy(
        name,
        rules=[
            {
                "route": {
                    "models": ["claude-3-opus-latest", "gpt-4o"],
                    "weights": {"claude-3-opus-20240229": 3, "gpt-4o": 1},
                }
            }
        ],
    )
    created = api.post("/v1/policies", json=body)
    assert created.status_code == 201, created.text
    route = created.json()["rules"][0]["route"]
    assert route["models"] == ["claude-3-opus", "gpt-4o"]
    assert route["weights"] == {"claude-3-opus": 3, "gpt-4o": 1}


@pytest.mark.parametrize(
    ("rules", "status", "code", "param"),
    [
        (
            [{"route": {"models": ["sim-gpt-mini"]}}, {"route": {"models": ["gpt-9-ultra"]}}],
            400,
            "unknown_model",
            "rules[1].route.models[0]",
        ),
        (
            [{"route": {"models": ["sim-gpt-mini"], "fallbacks": ["sim-gpt-large", "nope"]}}],
            400,
            "unknown_model",
            "rules[0].route.fallbacks[1]",
        ),
        (
            [{"route": {"models": ["sim-gpt-mini"], "weights": {"sim-gpt-large": 5}}}],
            400,
            "invalid_weights",
            "rules[0].route.weights.sim-gpt-large",
        ),
        (
            [{"route": {"models": ["sim-gpt-mini"], "weights": {"sim-gpt-mini": 0}}}],
            400,
            "invalid_request",
            "rules[0].route.weights.sim-gpt-mini",
        ),
        (
            [{"route": {"models": ["sim-gpt-mini"], "strategy": "quality_first"}}],
            400,
            "invalid_request",
            "rules[0].route.strategy",
        ),
        ([{"route": {"models": []}}], 400, "invalid_request", "rules[0].route.models"),
        (
            [{"match": {"colour": "red"}, "route": {"models": ["sim-gpt-mini"]}}],
            400,
            "invalid_request",
            "rules[0].match.colour",
        ),
        (
            [{"route": {"models": ["sim-gpt-mini"], "max_cost_usd": -1}}],
            400,
            "invalid_request",
            "rules[0].route.max_cost_usd",
        ),
        ([], 400, "invalid_request", "rules"),
        (
            [
                {
                    "route": {
                        "models": ["sim-gpt-mini", "sim-gpt-large", "sim-claude-haiku"],
                        "fallbacks": [
                            "sim-claude-sonnet",
                            "sim-gemini-flash",
                            "sim-llama-small",
                            "gpt-4o",
                            "gpt-4o-mini",
                            "gpt-4.1",
                        ],
                    }
                }
            ],
            400,
            "chain_too_long",
            "rules[0].route.fallbacks",
        ),
    ],
)
def test_invalid_policies_are_refused_and_nothing_is_written(
    api: httpx.Client,
    engine: Engine,
    name: str,
    rules: list[dict[str, Any]],
    status: int,
    code: str,
    param: str,
) -> None:
    for attempt in (
        api.post("/v1/policies", json=_policy(name, rules=rules)),
        api.put(f"/v1/policies/{name}", json=_policy(name, rules=rules)),
    ):
        assert attempt.status_code == status, attempt.text
        error = attempt.json()["error"]
        assert (error["code"], error.get("param")) == (code, param), error
    assert _rows(engine, name) == 0


def test_bad_names_and_bodies_are_400s(api: httpx.Client, name: str) -> None:
    bad_name = api.post("/v1/policies", json=_policy("has space"))
    assert bad_name.status_code == 400
    assert bad_name.json()["error"]["param"] == "name"
    nul = api.post("/v1/policies", json=_policy(name, description="a\u0000b"))
    assert nul.status_code == 400
    not_json = api.post("/v1/policies", content=b"{", headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    mismatch = api.put(f"/v1/policies/{name}", json=_policy("other-name"))
    assert mismatch.status_code == 400
    assert mismatch.json()["error"]["code"] == "name_mismatch"
    assert api.get(f"/v1/policies/{name}").status_code == 404


def test_put_creates_then_replaces_whole(api: httpx.Client, name: str) -> None:
    body = _policy(name)
    del body["name"]  # the path names it
    first = api.put(f"/v1/policies/{name}", json=body)
    assert first.status_code == 201, first.text
    replaced = api.put(
        f"/v1/policies/{name}",
        json={"priority": 7, "rules": [{"route": {"models": ["sim-gemini-flash"]}}]},
    )
    assert replaced.status_code == 200, replaced.text
    out = replaced.json()
    assert out["priority"] == 7
    assert out["description"] == ""  # replaced, not merged
    assert len(out["rules"]) == 1
    assert out["created_at"] == first.json()["created_at"]
    assert out["updated_at"] > first.json()["updated_at"]


def test_resolve_dry_run_follows_writes_at_once(api: httpx.Client, name: str) -> None:
    assert api.post("/v1/policies", json=_policy(name)).status_code == 201
    hit = api.post(
        f"/v1/policies/{name}/resolve",
        json={"metadata": {"task_type": "summarize", "language": "de", "user": "x"}},
    )
    assert hit.status_code == 200, hit.text
    assert hit.json() == {
        "object": "policy_route",
        "policy": name,
        "rule": 0,
        "models": ["sim-claude-sonnet", "sim-gpt-large", "sim-gpt-mini"],
        "strategy": "quality",
        "max_cost_usd": "0.05",
        "reason": f"policy {name} rule 0 (task_type=summarize, language=de)",
    }
    default = api.post(f"/v1/policies/{name}/resolve", json={"metadata": {"language": "fr"}})
    assert default.json()["models"] == ["sim-gpt-mini", "sim-claude-haiku"]
    assert default.json()["rule"] == 1

    # Replace it with one that has no default rule: the cached snapshot must not serve the old.
    only_de = {"rules": [{"match": {"language": "de"}, "route": {"models": ["sim-gpt-large"]}}]}
    assert api.put(f"/v1/policies/{name}", json=only_de).status_code == 200
    miss = api.post(f"/v1/policies/{name}/resolve", json={"metadata": {"language": "fr"}})
    assert miss.status_code == 400
    assert miss.json()["error"]["code"] == "no_matching_rule"

    disabled = {**only_de, "enabled": False}
    assert api.put(f"/v1/policies/{name}", json=disabled).status_code == 200
    off = api.post(f"/v1/policies/{name}/resolve", json={"metadata": {"language": "de"}})
    assert off.json()["error"]["code"] == "policy_disabled"

    assert api.delete(f"/v1/policies/{name}").status_code == 204
    gone = api.post(f"/v1/policies/{name}/resolve", json={})
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "policy_not_found"


def test_resolve_honours_weights_tags_and_tenant(api: httpx.Client, name: str) -> None:
    body = _policy(
        name,
        rules=[
            {
                "match": {"tags": ["beta"], "tenant": "default"},
                "route": {
                    "models": ["sim-gpt-mini", "sim-claude-haiku"],
                    "weights": {"sim-gpt-mini": 50, "sim-claude-haiku": 50},
                },
            },
            {"route": {"models": ["sim-gpt-large"]}},
        ],
    )
    assert api.post("/v1/policies", json=body).status_code == 201
    firsts = {
        api.post(f"/v1/policies/{name}/resolve", json={"tags": ["beta"], "seed": seed}).json()[
            "models"
        ][0]
        for seed in range(20)
    }
    assert firsts == {"sim-gpt-mini", "sim-claude-haiku"}
    same = [
        api.post(f"/v1/policies/{name}/resolve", json={"tags": ["beta"], "seed": 3}).json()
        for _ in range(3)
    ]
    assert same[0] == same[1] == same[2]
    other_tenant = api.post(
        f"/v1/policies/{name}/resolve", json={"tags": ["beta"], "tenant_id": "acme"}
    )
    assert other_tenant.json()["models"] == ["sim-gpt-large"]
    untagged = api.post(f"/v1/policies/{name}/resolve", json={"tags": ["alpha"]})
    assert untagged.json()["models"] == ["sim-gpt-large"]


def test_shipped_policies_resolve_as_the_seeds_say(api: httpx.Client) -> None:
    python = api.post(
        "/v1/policies/CodeGeneration/resolve",
        json={"metadata": {"task_type": "code_generation", "language": "python"}},
    )
    assert python.status_code == 200, python.text
    assert python.json()["models"] == [
        "claude-3-opus",
        "gpt-4-turbo",
        "claude-3-sonnet",
        "gpt-3.5-turbo",
    ]
    assert python.json()["strategy"] == "quality"
    rust = api.post(
        "/v1/policies/CodeGeneration/resolve",
        json={"metadata": {"task_type": "code_generation", "language": "rust"}},
    )
    assert rust.json()["rule"] == 2  # the default rule
    swe = api.post("/v1/policies/AgentModels/resolve", json={"metadata": {"agent": "SWE Agent"}})
    assert swe.json()["models"][0] == "claude-sonnet-4"
    assert swe.json()["models"][-1] == "gpt-4.1"  # the seed's reliable baseline
    pricing = api.post(
        "/v1/policies/AgentModels/resolve", json={"metadata": {"agent": "Pricing Agent"}}
    )
    assert pricing.json()["models"] == [
        "openrouter/meta-llama/llama-3.1-70b-instruct",
        "groq/qwen/qwen3-32b",
        "gpt-4.1",
    ]


def test_a_refused_replace_leaves_the_policy_as_it_was(api: httpx.Client, name: str) -> None:
    before = api.post("/v1/policies", json=_policy(name)).json()
    bad = _policy(name, priority=99)
    bad["rules"][1]["route"]["fallbacks"] = ["sim-claude-haiku", "no-such-model"]
    refused = api.put(f"/v1/policies/{name}", json=bad)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "rules[1].route.fallbacks[1]"
    assert api.get(f"/v1/policies/{name}").json() == before
    still = api.post(f"/v1/policies/{name}/resolve", json={"metadata": {}})
    assert still.json()["models"] == ["sim-gpt-mini", "sim-claude-haiku"]
