"""``app.client.Switchboard`` against the real API, workers and simulator."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.client import JobFailed, Switchboard, SwitchboardAPIError
from app.simulator.config import SimModel, default_config
from app.simulator.control import with_models
from app.simulator.tokens import generate_reply
from tests.conftest import Simulator

MINI = "sim-gpt-mini"


@pytest.fixture
def client(api_url: str, admin_key: str) -> Any:
    with Switchboard(api_url, api_key=admin_key, timeout=30, poll_initial_s=0.05) as sb:
        yield sb


def expected_reply(model: str, provider: str, texts: list[str], max_tokens: int) -> str:
    spec = default_config().providers[provider].models[model]
    return generate_reply(
        texts,
        prompt_tokens=0,
        output_range=spec.output_tokens,
        max_tokens=min(max_tokens, spec.max_output_tokens),
    ).text


def test_list_models_filters_by_provider_and_capability(client: Switchboard) -> None:
    everything = client.list_models()
    assert MINI in {m["id"] for m in everything}
    openai = client.list_models(provider="sim-openai")
    assert openai
    assert {m["provider"] for m in openai} == {"sim-openai"}
    assert len(openai) < len(everything)
    capability = everything[0]["capabilities"][0]
    assert all(capability in m["capabilities"] for m in client.list_models(capability=capability))
    assert client.list_models(capability="no-such-capability") == []


def test_get_model_info_returns_the_model_or_a_typed_error(client: Switchboard) -> None:
    info = client.get_model_info(MINI)
    assert (info["id"], info["provider"]) == (MINI, "sim-openai")
    assert info["pricing"]["input_per_mtok"]
    with pytest.raises(SwitchboardAPIError) as caught:
        client.get_model_info("no-such-model")
    assert (caught.value.code, caught.value.status) == ("model_not_found", 404)


@pytest.mark.usefixtures("workers")
def test_generate_chat_completion_waits_and_returns_the_simulators_answer(
    client: Switchboard,
) -> None:
    question = f"What is item {uuid.uuid4().hex}?"
    job = client.generate_chat_completion(
        [{"role": "user", "content": question}], model=MINI, max_tokens=40
    )
    assert job["status"] == "succeeded"
    assert job["served_model"] == MINI
    assert job["result"]["text"] == expected_reply(MINI, "sim-openai", [question], 40)
    assert job["usage"]["output_tokens"] == len(job["result"]["text"].split())
    assert job["cost_usd"] is not None


@pytest.mark.usefixtures("workers")
def test_a_failed_job_raises_with_its_error_class(
    client: Switchboard, simulator: Simulator
) -> None:
    def tiny(model: SimModel) -> SimModel:
        return model.model_copy(update={"context_window": 64})

    simulator.configure(with_models(default_config(), "sim-openai", tiny))
    with pytest.raises(JobFailed) as caught:
        client.generate_chat_completion(
            [{"role": "user", "content": "word " * 400}], model=MINI, max_tokens=8
        )
    assert caught.value.code == "context_length"
    assert caught.value.job["status"] == "failed"


@pytest.mark.usefixtures("workers")
def test_submit_batch_wait_and_read_its_results(client: Switchboard) -> None:
    tag = uuid.uuid4().hex[:8]
    requests = [
        {
            "custom_id": f"{tag}-{i}",
            "model": MINI,
            "messages": [{"role": "user", "content": f"Summarise {tag} item {i}."}],
            "max_tokens": 16,
        }
        for i in range(6)
    ]
    batch = client.submit_batch(requests, priority="high", metadata={"run": tag})
    assert batch["request_counts"]["total"] == 6
    seen: list[int] = []
    final = client.wait_for_batch(
        batch["id"],
        timeout=60,
        on_progress=lambda b: seen.append(b["request_counts"]["completed"]),
    )
    assert final["status"] == "completed"
    assert final["request_counts"] == {"total": 6, "completed": 6, "failed": 0}
    assert seen
    assert seen[-1] == 6
    assert client.get_batch(batch["id"])["metadata"] == {"run": tag}
    results = list(client.batch_results(batch["id"]))
    assert sorted(r["custom_id"] for r in results) == sorted(r["custom_id"] for r in requests)
    for r in results:
        i = int(r["custom_id"].rsplit("-", 1)[1])
        text = r["response"]["body"]["choices"][0]["message"]["content"]
        assert text == expected_reply(MINI, "sim-openai", [f"Summarise {tag} item {i}."], 16)


def test_error_bodies_become_typed_errors_with_their_code(client: Switchboard) -> None:
    with pytest.raises(SwitchboardAPIError) as missing:
        client.get_job("job_doesnotexist")
    assert (missing.value.code, missing.value.status) == ("job_not_found", 404)

    with pytest.raises(SwitchboardAPIError) as invalid:
        client.submit_job({"model": MINI, "messages": [], "max_tokens": 8})
    assert invalid.value.status == 400
    assert invalid.value.code == "invalid_request"

    with pytest.raises(SwitchboardAPIError) as bad_period:
        client.get_usage_stats(period="2h")
    assert bad_period.value.status == 400


def test_reports_through_the_client(client: Switchboard) -> None:
    stats = client.get_usage_stats(period="7d", group_by="model")
    assert stats["object"] == "stats_report"
    assert stats["overall"]["jobs"] == sum(g["jobs"] for g in stats["data"])
    costs = client.get_cost_report(period="7d", group_by="provider")
    assert costs["object"] == "cost_report"
    assert "month_to_date_usd" in costs["forecast"]


def test_an_unreachable_api_is_a_typed_error() -> None:
    with (
        Switchboard("http://127.0.0.1:9", timeout=2) as sb,
        pytest.raises(SwitchboardAPIError) as caught,
    ):
        sb.list_models()
    assert caught.value.code == "api_unreachable"


@pytest.mark.usefixtures("workers")
def test_run_chain_and_run_ensemble_wait_for_the_answer(client: Switchboard) -> None:
    roles = {"planner": MINI, "executor": MINI, "reviewer": "sim-gpt-large"}
    chain = client.run_chain("a limerick about queues", "default", models=roles)
    assert chain["status"] == "succeeded"
    assert [s["role"] for s in chain["steps"]] == ["planner", "executor", "reviewer"]
    assert chain["result"]["text"] == chain["steps"][-1]["result"]["text"]

    ensemble = client.run_ensemble(
        "Pick a number", [MINI, "sim-claude-haiku"], synthesizer="majority", max_tokens=16
    )
    assert ensemble["status"] == "succeeded"
    assert ensemble["synthesis"]["synthesizer"] == "majority"
    assert {c["name"] for c in client.list_chains()} >= {"default", "code"}

    accepted = client.run_chain(
        "x", {"steps": [{"role": "a", "model": MINI, "prompt": "{input}"}]}, wait=False
    )
    assert accepted["id"].startswith("chain_")
    with pytest.raises(SwitchboardAPIError) as caught:
        client.run_chain("x", {"steps": [{"role": "a", "model": MINI, "prompt": "{nope}"}]})
    assert (caught.value.code, caught.value.status) == ("unknown_template_name", 400)
    with pytest.raises(JobFailed) as failed:
        client.run_ensemble(
            "Pick a number",
            [MINI, "sim-claude-haiku"],
            synthesizer="judge",
            judge={"model": MINI, "mode": "pick"},
        )
    assert failed.value.code == "quality"
