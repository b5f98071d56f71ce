"""The chains Switchboard ships: well formed, runnable on the shipped catalog and policies,
and listed by the API."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.orm import Session

from app.orchestration.definitions import chain_for, shipped_chains
from app.orchestration.plans import Router, plan_chain_run
from app.orchestration.schemas import ChainCreate
from app.policies.store import load_policies
from app.registry.service import load_registry
from app.routing.plan import PolicySource


def test_the_seeds_default_and_code_chains_ship_with_planner_executor_reviewer() -> None:
    chains = shipped_chains()
    assert set(chains) >= {"default", "code"}
    for name in ("default", "code"):
        assert [s.role for s in chains[name].steps] == ["planner", "executor", "reviewer"]
    assert chains["code"].task_types == ["code_generation"]
    assert chains["code"].steps[1].policy == "CodeGeneration"


def test_a_chain_is_chosen_by_task_type_else_default() -> None:
    assert chain_for({"task_type": "code_generation"})[0] == "code"
    assert chain_for({"task_type": "translation"})[0] == "default"
    assert chain_for(None)[0] == "default"


@pytest.mark.parametrize("name", sorted(shipped_chains()))
def test_every_shipped_chain_plans_on_the_shipped_catalog_and_policies(
    db: Session, name: str
) -> None:
    """Planning checks every model, policy and template placeholder, as a request would."""
    registry = load_registry(db)
    policies = load_policies(db)
    router = Router(registry, policies=PolicySource(lambda: policies, "default"))
    create = ChainCreate(
        chain=name, input="Create a React component", metadata={"language": "typescript"}
    )
    planned = plan_chain_run(create, router)
    assert [s["role"] for s in planned.spec["steps"]] == [
        s.role for s in shipped_chains()[name].steps
    ]
    assert all(cost > 0 for cost in planned.worst_usd)
    # A later step's worst case counts the earlier outputs its prompt includes.
    assert planned.worst_usd[2] > planned.worst_usd[0]


def test_the_api_lists_the_shipped_chains(api: httpx.Client) -> None:
    listed = api.get("/v1/chains/definitions")
    assert listed.status_code == 200
    names = [c["name"] for c in listed.json()["data"]]
    assert names == sorted(shipped_chains())
    code = api.get("/v1/chains/definitions/code").json()
    assert [s["role"] for s in code["steps"]] == ["planner", "executor", "reviewer"]
    missing = api.get("/v1/chains/definitions/nonesuch")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "chain_not_found"
