"""Chains on the real stack: steps run in order on real workers against the simulator, each a
job of its own in the ledger, visible through ``GET /v1/jobs/{id}``."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from app.simulator.config import default_config
from app.simulator.control import with_provider
from tests.conftest import Simulator, count_rows
from tests.orchestration.support import finished, ledger_totals, step_requests, user_prompt

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]


@pytest.fixture(autouse=True)
def breakers_closed(api: httpx.Client) -> Iterator[None]:
    yield
    for breaker in api.get("/v1/breakers").json()["data"]:
        api.post(f"/v1/breakers/{breaker['target']}/reset").raise_for_status()


def three_steps(**executor: Any) -> dict[str, Any]:
    return {
        "steps": [
            {
                "role": "planner",
                "model": "sim-gpt-mini",
                "system": "You plan.",
                "prompt": "Plan: {input}",
                "max_tokens": 64,
            },
            {
                "role": "executor",
                "model": "sim-claude-haiku",
                "prompt": "Do {input} following {steps.planner}",
                "max_tokens": 64,
                **executor,
            },
            {
                "role": "reviewer",
                "model": "sim-gpt-large",
                "prompt": "Review {previous} (plan was {steps.planner}) {{input}}",
                "max_tokens": 64,
            },
        ]
    }


def test_a_chain_runs_end_to_end_with_every_step_recorded(
    api: httpx.Client, engine: Engine
) -> None:
    accepted = api.post(
        "/v1/chains",
        json={"chain": three_steps(), "input": "write a haiku", "metadata": {"team": "docs"}},
    )
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["id"].startswith("chain_")
    assert (body["kind"], body["status"], body["created"]) == ("chain", "running", True)
    assert len(body["steps"]) == 1  # the next step exists only once this one has ended

    chain = finished(api, body["id"])
    assert chain["status"] == "succeeded", chain
    assert chain["kind"] == "chain"
    steps = chain["steps"]
    assert [(s["index"], s["role"], s["status"]) for s in steps] == [
        (0, "planner", "succeeded"),
        (1, "executor", "succeeded"),
        (2, "reviewer", "succeeded"),
    ]
    assert [s["served_model"] for s in steps] == [
        "sim-gpt-mini",
        "sim-claude-haiku",
        "sim-gpt-large",
    ]
    assert steps[0]["id"] == body["steps"][0]

    # Each step's prompt holds the outputs before it; nothing else is interpreted.
    planner, executor, reviewer = step_requests(engine, body["id"])
    plan, done = steps[0]["result"]["text"], steps[1]["result"]["text"]
    assert planner["messages"] == [
        {"role": "system", "content": "You plan."},
        {"role": "user", "content": "Plan: write a haiku"},
    ]
    assert user_prompt(executor) == f"Do write a haiku following {plan}"
    assert user_prompt(reviewer) == f"Review {done} (plan was {plan}) {{input}}"

    # The chain's answer is its last step's; its tokens and cost are its steps' sums.
    assert chain["result"]["text"] == steps[2]["result"]["text"]
    assert chain["served_model"] == "sim-gpt-large"
    tokens_in, tokens_out, cost = ledger_totals(engine, body["id"])
    assert chain["usage"]["input_tokens"] == tokens_in > 0
    assert chain["usage"]["output_tokens"] == tokens_out > 0
    assert Decimal(chain["cost_usd"]) == cost == sum(Decimal(s["cost_usd"]) for s in steps)
    assert chain["synthesis"] == {"output": "reviewer", "skipped": []}
    assert chain["metadata"] == {"team": "docs"}

    # Each step is a job of its own: its attempts, and its parent.
    step = api.get(f"/v1/jobs/{steps[1]['id']}").json()
    assert step["parent"] == {
        "id": body["id"],
        "kind": "chain",
        "step_index": 1,
        "role": "executor",
    }
    assert step["metadata"] == {"team": "docs"}
    assert [(a["model"], a["status"]) for a in step["attempts"]] == [
        ("sim-claude-haiku", "succeeded")
    ]
    listed = api.get("/v1/jobs", params={"parent_id": body["id"]}).json()["data"]
    assert sorted(j["id"] for j in listed) == sorted(s["id"] for s in steps)
    assert body["id"] in [c["id"] for c in api.get("/v1/chains").json()["data"]]


def test_a_step_falls_back_on_its_own_chain_and_the_chain_goes_on(
    api: httpx.Client, simulator: Simulator
) -> None:
    simulator.configure(with_provider(default_config(), "sim-anthropic", down=True))
    body = {
        "chain": three_steps(model=["sim-claude-haiku", "sim-gpt-mini"]),
        "input": "summarise the report",
    }
    chain = finished(api, api.post("/v1/chains", json=body).json()["id"])
    assert chain["status"] == "succeeded", chain
    executor = api.get(f"/v1/jobs/{chain['steps'][1]['id']}").json()
    tried = [(a["model"], a["status"], a["decision"]) for a in executor["attempts"]]
    assert tried[-1] == ("sim-gpt-mini", "succeeded", "succeeded")
    assert ("sim-claude-haiku", "failed", "fallback") in tried
    assert chain["steps"][1]["served_model"] == "sim-gpt-mini"


def test_a_step_failing_after_its_fallbacks_fails_the_chain(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    simulator.configure(with_provider(default_config(), "sim-anthropic", down=True))
    chain = finished(
        api, api.post("/v1/chains", json={"chain": three_steps(), "input": "x"}).json()["id"]
    )
    assert chain["status"] == "failed"
    assert chain["error"]["code"] in ("server_error", "overloaded", "circuit_open")
    assert chain["error"]["message"].startswith("step 2 (executor) failed: ")
    assert [s["role"] for s in chain["steps"]] == ["planner", "executor"]  # no reviewer
    assert chain["result"] is None
    _, _, cost = ledger_totals(engine, chain["id"])
    assert Decimal(chain["cost_usd"]) == cost > 0  # the planner's answer was paid for


def test_a_skippable_step_that_fails_leaves_an_empty_output(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    simulator.configure(with_provider(default_config(), "sim-anthropic", down=True))
    body = {"chain": three_steps(on_failure="skip"), "input": "x"}
    chain = finished(api, api.post("/v1/chains", json=body).json()["id"])
    assert chain["status"] == "succeeded", chain
    assert [s["status"] for s in chain["steps"]] == ["succeeded", "failed", "succeeded"]
    assert chain["synthesis"] == {"output": "reviewer", "skipped": ["executor"]}
    reviewer = step_requests(engine, chain["id"])[2]
    assert user_prompt(reviewer).startswith("Review  (plan was ")


def test_a_shipped_chain_runs_by_name_on_the_models_given_for_its_roles(
    api: httpx.Client, engine: Engine
) -> None:
    body = {
        "chain": "code",
        "input": "a function that reverses a list",
        "metadata": {"language": "python"},
        "models": {
            "planner": "sim-gpt-mini",
            "executor": ["sim-claude-haiku", "sim-gpt-mini"],
            "reviewer": "sim-gpt-large",
        },
    }
    chain = finished(api, api.post("/v1/chains", json=body).json()["id"])
    assert chain["status"] == "succeeded", chain
    assert [s["role"] for s in chain["steps"]] == ["planner", "executor", "reviewer"]
    assert [s["model"] for s in chain["steps"]] == [
        ["sim-gpt-mini"],
        ["sim-claude-haiku", "sim-gpt-mini"],
        ["sim-gpt-large"],
    ]
    planner = step_requests(engine, chain["id"])[0]
    assert "software architect" in planner["messages"][0]["content"]
    executor = api.get(f"/v1/jobs/{chain['steps'][1]['id']}").json()
    assert executor["metadata"] == {"language": "python", "task_type": "code_generation"}


def test_a_chain_is_chosen_by_task_type_and_can_be_cancelled(
    api: httpx.Client, engine: Engine
) -> None:
    """No worker serves the shipped chains' real models here: its first step waits queued."""
    body = {"input": "a React component", "metadata": {"task_type": "code_generation"}}
    accepted = api.post("/v1/chains", json=body).json()
    with engine.connect() as conn:
        spec = conn.execute(
            text("SELECT spec FROM orchestrations WHERE id = :id"), {"id": accepted["id"]}
        ).scalar_one()
    assert spec["name"] == "code"
    chain = api.get(f"/v1/jobs/{accepted['id']}").json()
    assert [(s["role"], s["status"]) for s in chain["steps"]] == [("planner", "queued")]
    assert chain["steps"][0]["model"] == ["claude-sonnet-4", "gpt-4.1"]

    cancelled = api.post(f"/v1/jobs/{accepted['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert [s["status"] for s in cancelled.json()["steps"]] == ["cancelled"]
    again = api.post(f"/v1/jobs/{accepted['id']}/cancel")
    assert again.status_code == 200


@pytest.mark.parametrize(
    ("change", "code", "param"),
    [
        (
            {"chain": {"steps": [{"role": "a", "model": "sim-gpt-mini", "prompt": "{inptu}"}]}},
            "unknown_template_name",
            "chain.steps[0].prompt",
        ),
        (
            {
                "chain": {
                    "steps": [
                        {"role": "a", "model": "sim-gpt-mini", "prompt": "{steps.b}"},
                        {"role": "b", "model": "sim-gpt-mini", "prompt": "{input}"},
                    ]
                }
            },
            "unknown_template_name",
            "chain.steps[0].prompt",
        ),
        (
            {"chain": {"steps": [{"role": "a", "model": "sim-gpt-mini", "prompt": "{previous}"}]}},
            "unknown_template_name",
            "chain.steps[0].prompt",
        ),
        (
            {"chain": {"steps": [{"role": "a", "model": "no-such-model", "prompt": "{input}"}]}},
            "unknown_model",
            "chain.steps[0].model",
        ),
        ({"chain": "nonesuch"}, "unknown_chain", "chain"),
        ({"chain": "code", "models": {"tester": "sim-gpt-mini"}}, "unknown_role", "models.tester"),
        (
            {
                "chain": {
                    "steps": [
                        {"role": "a", "model": "sim-gpt-mini", "prompt": "{input}"},
                        {"role": "a", "model": "sim-gpt-mini", "prompt": "{input}"},
                    ]
                }
            },
            "invalid_request",
            "chain.steps",
        ),
    ],
)
def test_a_bad_chain_is_refused_and_nothing_is_written(
    api: httpx.Client, engine: Engine, change: dict[str, Any], code: str, param: str
) -> None:
    before = count_rows(engine, "orchestrations"), count_rows(engine, "jobs")
    response = api.post("/v1/chains", json={"input": "x", **change})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error.get("param")) == (code, param)
    assert (count_rows(engine, "orchestrations"), count_rows(engine, "jobs")) == before
