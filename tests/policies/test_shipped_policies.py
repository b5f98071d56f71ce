"""The routing policies Switchboard ships: valid against the shipped catalog, loaded by
``migrate`` without ever overwriting what an operator changed."""

from __future__ import annotations

import httpx
from sqlalchemy.orm import Session

from app.config import Settings
from app.db.migrate import migrate
from app.policies.seeds import shipped_policies
from app.policies.store import check_rules
from app.registry.catalog import load_catalog
from app.registry.service import load_registry


def test_every_shipped_policy_names_only_catalog_models_by_id(db: Session) -> None:
    catalog = load_catalog(simulator_url="http://127.0.0.1:1")
    registry = load_registry(db)  # the test database holds exactly the shipped catalog
    shipped = shipped_policies()
    assert {p.name for p in shipped} >= {"CodeGeneration", "AgentModels"}
    for policy in shipped:
        checked = check_rules(policy, registry)  # raises unknown_model naming the rule
        assert checked == policy.rules, f"{policy.name} names a model by alias"
        for rule in policy.rules:
            for model in rule.route.models + rule.route.fallbacks:
                assert model in catalog.models, (policy.name, model)


def test_migrate_adds_missing_shipped_policies_and_keeps_edited_ones(
    api: httpx.Client, settings: Settings
) -> None:
    assert settings.database_url is not None
    assert settings.simulator_url is not None
    original = api.get("/v1/policies/AgentModels").json()
    edited = {
        "description": "operator's own",
        "priority": 3,
        "rules": [{"match": {"agent": "SWE Agent"}, "route": {"models": ["gpt-4o"]}}],
    }
    try:
        assert api.put("/v1/policies/AgentModels", json=edited).status_code == 200
        assert api.delete("/v1/policies/CodeGeneration").status_code == 204

        migrate(settings.database_url, simulator_url=settings.simulator_url)

        kept = api.get("/v1/policies/AgentModels").json()
        assert (kept["description"], kept["priority"]) == ("operator's own", 3)
        assert len(kept["rules"]) == 1
        restored = api.get("/v1/policies/CodeGeneration")
        assert restored.status_code == 200
        assert restored.json()["rules"][1]["match"]["language"] == "python"
    finally:
        if api.get("/v1/policies/CodeGeneration").status_code == 404:
            migrate(settings.database_url, simulator_url=settings.simulator_url)
        api.put(
            "/v1/policies/AgentModels",
            json={k: original[k] for k in ("description", "priority", "enabled", "rules")},
        )
