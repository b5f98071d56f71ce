"""Ensembles on the real stack: branches in parallel on real workers, each a job in the
ledger, combined by each synthesizer.

The simulator's answer is a function of the prompt, so every branch of an ensemble says the
same thing unless told otherwise: a model given a fixed ``output_tokens`` answers with only
the first few words of that answer — a different answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from app.simulator.config import SimulatorConfig, default_config
from app.simulator.control import with_provider
from tests.conftest import Simulator
from tests.orchestration.support import finished, ledger_totals, step_requests, user_prompt

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]

PROMPT = "Which city hosts the 2036 games?"


@pytest.fixture(autouse=True)
def breakers_closed(api: httpx.Client) -> Iterator[None]:
    yield
    for breaker in api.get("/v1/breakers").json()["data"]:
        api.post(f"/v1/breakers/{breaker['target']}/reset").raise_for_status()


def answering_shortly(**words: int) -> SimulatorConfig:
    """The default simulator, with each named model answering in that many words."""
    config = default_config()
    for provider in ("sim-openai", "sim-anthropic"):
        models = dict(config.providers[provider].models)
        for name, count in words.items():
            if name in models:
                models[name] = models[name].model_copy(update={"output_tokens": (count, count)})
        config = with_provider(config, provider, models=models)
    return config


def run(api: httpx.Client, **body: Any) -> dict[str, Any]:
    accepted = api.post("/v1/ensembles", json={"prompt": PROMPT, "max_tokens": 64, **body})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["id"].startswith("ensemble_")
    return finished(api, accepted.json()["id"])


def test_first_success_answers_with_the_first_branch_to_succeed(
    api: httpx.Client, engine: Engine
) -> None:
    ensemble = run(api, models=["sim-gpt-mini", "sim-claude-haiku"], synthesizer="first_success")
    assert ensemble["status"] == "succeeded", ensemble
    branches = ensemble["steps"]
    assert [(b["index"], b["role"]) for b in branches] == [(0, "branch"), (1, "branch")]
    winner = branches[ensemble["synthesis"]["winner"]]
    assert winner["status"] == "succeeded"
    assert ensemble["result"]["text"] == winner["result"]["text"]
    assert ensemble["served_model"] == winner["served_model"]
    # The other branch either answered too (and is paid for) or was cancelled unstarted.
    assert {b["status"] for b in branches} <= {"succeeded", "cancelled"}
    assert Decimal(ensemble["cost_usd"]) == ledger_totals(engine, ensemble["id"])[2]


def test_hedged_branches_that_are_not_needed_never_start(api: httpx.Client, engine: Engine) -> None:
    ensemble = run(
        api,
        models=["sim-gpt-mini", "sim-claude-haiku", "sim-gpt-large"],
        synthesizer="first_success",
        hedge_after_s=60,
    )
    assert ensemble["status"] == "succeeded", ensemble
    assert [b["status"] for b in ensemble["steps"]] == ["succeeded", "cancelled", "cancelled"]
    for unneeded in ensemble["steps"][1:]:
        assert (unneeded["attempt_count"], unneeded["cost_usd"]) == (0, None)
    assert Decimal(ensemble["cost_usd"]) == Decimal(ensemble["steps"][0]["cost_usd"])


def test_a_hedged_branch_starts_at_once_when_the_branches_before_it_failed(
    api: httpx.Client, simulator: Simulator
) -> None:
    simulator.configure(with_provider(default_config(), "sim-anthropic", down=True))
    ensemble = run(
        api,
        models=["sim-claude-haiku", "sim-gpt-mini"],
        synthesizer="first_success",
        hedge_after_s=600,  # far beyond the wait: only its predecessor's failure starts it
    )
    assert ensemble["status"] == "succeeded", ensemble
    assert [b["status"] for b in ensemble["steps"]] == ["failed", "succeeded"]
    assert ensemble["synthesis"]["winner"] == 1


def test_majority_picks_the_answer_most_branches_agree_on(
    api: httpx.Client, simulator: Simulator
) -> None:
    simulator.configure(answering_shortly(**{"sim-claude-haiku": 3}))
    ensemble = run(
        api,
        models=["sim-gpt-mini", "sim-claude-haiku", "sim-gpt-large"],
        synthesizer="majority",
    )
    assert ensemble["status"] == "succeeded", ensemble
    synthesis = ensemble["synthesis"]
    assert (synthesis["synthesizer"], synthesis["quorum"], synthesis["winner"]) == (
        "majority",
        2,
        0,
    )
    assert synthesis["votes"][0]["branches"] == [0, 2]
    assert ensemble["result"]["text"] == ensemble["steps"][0]["result"]["text"]


def test_majority_ties_go_to_the_answer_of_the_lowest_branch(
    api: httpx.Client, simulator: Simulator
) -> None:
    simulator.configure(answering_shortly(**{"sim-claude-haiku": 3, "sim-claude-sonnet": 3}))
    ensemble = run(
        api,
        models=["sim-claude-haiku", "sim-gpt-mini", "sim-claude-sonnet", "sim-gpt-large"],
        synthesizer="majority",
        quorum=2,
    )
    assert ensemble["status"] == "succeeded", ensemble
    votes = ensemble["synthesis"]["votes"]
    assert [v["branches"] for v in votes] == [[0, 2], [1, 3]]
    assert ensemble["synthesis"]["winner"] == 0
    assert ensemble["served_model"] == "sim-claude-haiku"


def test_majority_without_a_quorum_fails_with_the_votes(
    api: httpx.Client, simulator: Simulator
) -> None:
    simulator.configure(answering_shortly(**{"sim-claude-haiku": 3, "sim-gpt-large": 5}))
    ensemble = run(
        api,
        models=["sim-gpt-mini", "sim-claude-haiku", "sim-gpt-large"],
        synthesizer="majority",
    )
    assert ensemble["status"] == "failed"
    assert ensemble["error"]["code"] == "no_quorum"
    assert "quorum of 2 of 3" in ensemble["error"]["message"]
    assert sorted(len(v["branches"]) for v in ensemble["synthesis"]["votes"]) == [1, 1, 1]


def test_majority_can_vote_on_what_a_pattern_finds_in_each_answer(
    api: httpx.Client, simulator: Simulator
) -> None:
    simulator.configure(answering_shortly(**{"sim-claude-haiku": 3, "sim-gpt-large": 5}))
    ensemble = run(
        api,
        models=["sim-gpt-mini", "sim-claude-haiku", "sim-gpt-large"],
        synthesizer="majority",
        vote_pattern=r"^(\w+)",  # their first words agree, though the answers do not
    )
    assert ensemble["status"] == "succeeded", ensemble
    assert len(ensemble["synthesis"]["votes"]) == 1


def test_a_judge_merges_the_answers_as_a_step_of_its_own(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    simulator.configure(answering_shortly(**{"sim-claude-haiku": 3}))
    ensemble = run(
        api,
        models=["sim-gpt-mini", "sim-claude-haiku"],
        synthesizer="judge",
        judge={"model": "sim-gpt-large", "max_tokens": 128},
    )
    assert ensemble["status"] == "succeeded", ensemble
    assert [(s["role"], s["status"]) for s in ensemble["steps"]] == [
        ("branch", "succeeded"),
        ("branch", "succeeded"),
        ("judge", "succeeded"),
    ]
    judge = ensemble["steps"][2]
    assert ensemble["result"]["text"] == judge["result"]["text"]
    assert ensemble["served_model"] == "sim-gpt-large"
    asked = user_prompt(step_requests(engine, ensemble["id"])[2])
    first, second = (b["result"]["text"] for b in ensemble["steps"][:2])
    assert asked == f"Request:\n{PROMPT}\n\nAnswers:\nAnswer 1:\n{first}\n\nAnswer 2:\n{second}"
    parent = api.get(f"/v1/jobs/{judge['id']}").json()["parent"]
    assert parent == {"id": ensemble["id"], "kind": "ensemble", "step_index": 2, "role": "judge"}
    assert Decimal(ensemble["cost_usd"]) == ledger_totals(engine, ensemble["id"])[2]


def test_a_picking_judge_that_names_no_answer_fails_the_ensemble_on_quality(
    api: httpx.Client,
) -> None:
    """Simulated models answer in words, never with a number: the pick's own validator
    refuses the judge's reply, resampled once, and the ensemble fails on ``quality``."""
    ensemble = run(
        api,
        models=["sim-gpt-mini", "sim-claude-haiku"],
        synthesizer="judge",
        judge={"model": "sim-gpt-mini", "mode": "pick"},
    )
    assert ensemble["status"] == "failed"
    assert ensemble["error"]["code"] == "quality"
    assert ensemble["error"]["message"].startswith("the judge failed: quality")
    judge = api.get(f"/v1/jobs/{ensemble['steps'][2]['id']}").json()
    assert [(a["error_class"], a["decision"]) for a in judge["attempts"]] == [
        ("quality", "retry"),
        ("quality", "fail"),
    ]
    assert all(a["input_tokens"] for a in judge["attempts"])  # refused answers are billed


def test_with_one_answer_there_is_nothing_to_judge(api: httpx.Client, simulator: Simulator) -> None:
    simulator.configure(with_provider(default_config(), "sim-anthropic", down=True))
    ensemble = run(
        api,
        models=["sim-gpt-mini", "sim-claude-haiku"],
        synthesizer="judge",
        judge={"model": "sim-gpt-large"},
    )
    assert ensemble["status"] == "succeeded", ensemble
    assert [s["role"] for s in ensemble["steps"]] == ["branch", "branch"]  # no judge paid
    assert ensemble["synthesis"]["winner"] == 0


def test_branches_failing_on_validators_fall_back_within_their_branch(
    api: httpx.Client, simulator: Simulator
) -> None:
    simulator.configure(answering_shortly(**{"sim-claude-haiku": 2}))
    ensemble = run(
        api,
        branches=[
            {"model": ["sim-claude-haiku", "sim-gpt-mini"]},
            {"model": "sim-gpt-large"},
        ],
        synthesizer="majority",
        validators=[{"type": "min_length", "length": 40}],
        max_tokens=64,
    )
    assert ensemble["status"] == "succeeded", ensemble
    first = api.get(f"/v1/jobs/{ensemble['steps'][0]['id']}").json()
    assert [(a["model"], a["error_class"]) for a in first["attempts"]] == [
        ("sim-claude-haiku", "quality"),
        ("sim-claude-haiku", "quality"),
        ("sim-gpt-mini", None),
    ]
    assert ensemble["synthesis"]["votes"][0]["branches"] == [0, 1]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"models": ["sim-gpt-mini"], "synthesizer": "majority"}, "models"),
        ({"models": ["sim-gpt-mini", "nope"], "synthesizer": "majority"}, "models[1]"),
        (  # a branch's fallback list naming a model twice (the fuzzer's find: it was a 500)
            {
                "models": ["sim-gpt-mini", ["sim-gpt-large", "sim-gpt-mini", "sim-gpt-large"]],
                "synthesizer": "majority",
            },
            "models",
        ),
        ({"models": ["sim-gpt-mini", "sim-gpt-large"], "synthesizer": "judge"}, None),
        (
            {
                "models": ["sim-gpt-mini", "sim-gpt-large"],
                "synthesizer": "judge",
                "judge": {"model": "sim-gpt-mini", "prompt": "{question}"},
            },
            "judge.prompt",
        ),
        (
            {"models": ["sim-gpt-mini", "sim-gpt-large"], "synthesizer": "majority", "quorum": 3},
            None,
        ),
        (
            {
                "models": ["sim-gpt-mini", "sim-gpt-large"],
                "synthesizer": "majority",
                "vote_pattern": "(a)\\1",
            },
            "vote_pattern",
        ),
    ],
)
def test_a_bad_ensemble_is_refused(
    api: httpx.Client, body: dict[str, Any], param: str | None
) -> None:
    response = api.post("/v1/ensembles", json={"prompt": PROMPT, **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"].get("param") == param
