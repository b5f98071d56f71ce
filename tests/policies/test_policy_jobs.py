"""Jobs and batches that name a routing policy: the policy's matching rule picks the models,
and the job says which policy and rule chose them."""

from __future__ import annotations

import httpx

MESSAGES = [{"role": "user", "content": "write a function"}]


def test_a_job_naming_a_policy_gets_the_rules_models(api: httpx.Client) -> None:
    body = {
        "policy": "CodeGeneration",
        "messages": MESSAGES,
        "max_tokens": 16,
        "metadata": {"task_type": "code_generation", "language": "python"},
    }
    created = api.post("/v1/jobs", json=body)
    assert created.status_code == 202, created.text
    job = api.get(f"/v1/jobs/{created.json()['id']}").json()
    resolved = api.post(
        "/v1/policies/CodeGeneration/resolve",
        json={"metadata": body["metadata"]},
    ).json()
    assert job["routing"]["policy"] == "CodeGeneration"
    assert job["routing"]["rule"] == resolved["rule"]
    assert job["model"][0] in resolved["models"]
    assert "CodeGeneration" in job["routing"]["reason"]


def test_a_policy_with_a_strategy_picks_the_best_of_its_models(api: httpx.Client) -> None:
    name = "cheapest-sim"
    api.delete(f"/v1/policies/{name}")
    policy = {
        "name": name,
        "rules": [
            {
                "route": {
                    "models": ["sim-gpt-large", "sim-gpt-mini", "sim-claude-sonnet"],
                    "strategy": "cost",
                }
            }
        ],
    }
    assert api.post("/v1/policies", json=policy).status_code == 201
    try:
        created = api.post(
            "/v1/jobs", json={"policy": name, "messages": MESSAGES, "max_tokens": 16}
        )
        assert created.status_code == 202, created.text
        job = api.get(f"/v1/jobs/{created.json()['id']}").json()
        assert job["model"][0] == "sim-gpt-mini"  # the cheapest of the three
        assert job["routing"]["strategy"] == "cost"
        assert set(job["model"]) <= {"sim-gpt-large", "sim-gpt-mini", "sim-claude-sonnet"}

        batch = api.post(
            "/v1/batches",
            json={"requests": [{"policy": name, "prompt": f"q{i}"} for i in range(3)]},
        )
        assert batch.status_code == 200, batch.text
        jobs = api.get("/v1/jobs", params={"batch_id": batch.json()["id"]}).json()["data"]
        assert {j["model"][0] for j in jobs} == {"sim-gpt-mini"}
    finally:
        api.delete(f"/v1/policies/{name}")


def test_policy_mistakes_are_clear_400s(api: httpx.Client) -> None:
    unknown = api.post("/v1/jobs", json={"policy": "NoSuchPolicy", "prompt": "x"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "policy_not_found"
    no_rule = api.post(
        "/v1/jobs",
        json={"policy": "AgentModels", "prompt": "x", "metadata": {"agent": "nobody"}},
    )
    assert no_rule.status_code == 400
    assert no_rule.json()["error"]["code"] == "no_matching_rule"
    both = api.post(
        "/v1/jobs", json={"policy": "AgentModels", "model": "sim-gpt-mini", "prompt": "x"}
    )
    assert both.status_code == 400
    assert "exactly one of" in both.json()["error"]["message"]
