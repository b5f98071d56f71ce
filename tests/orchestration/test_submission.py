"""Submitting chains and ensembles: budgets reserved whole, Idempotency-Key, tenants, and the
webhook an orchestration's end sends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, text

from app.simulator.config import default_config
from app.simulator.control import with_provider
from tests.conftest import Simulator, wait_until
from tests.orchestration.support import finished
from tests.webhooks.conftest import Receiver, receiver, webhook_workers  # noqa: F401

IDLE = "sim-llama-small"  # no worker serves it in the tests: its step stays queued


@pytest.fixture(autouse=True)
def breakers_closed(api: httpx.Client) -> Iterator[None]:
    yield
    for breaker in api.get("/v1/breakers").json()["data"]:
        api.post(f"/v1/breakers/{breaker['target']}/reset").raise_for_status()


def chain(first: str = IDLE, second: str = "sim-gpt-large", **extra: Any) -> dict[str, Any]:
    steps = [
        {"role": "one", "model": first, "prompt": "{input}", "max_tokens": 100},
        {"role": "two", "model": second, "prompt": "{input} {previous}", "max_tokens": 300},
        {"role": "three", "model": "sim-gpt-large", "prompt": "{previous}", "max_tokens": 50},
    ]
    return {"chain": {"steps": steps}, "input": "compare the two offers", **extra}


def budget(api: httpx.Client, tenant_id: str, limit: str) -> str:
    body = {"tenant_id": tenant_id, "period": "day", "limit_usd": limit}
    created = api.post("/v1/budgets", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def held(client: httpx.Client, budget_id: str) -> tuple[Decimal, Decimal]:
    state = client.get(f"/v1/budgets/{budget_id}").json()
    return Decimal(state["reserved_usd"]), Decimal(state["spent_usd"])


def tenant_rows(engine: Engine, tenant_id: str) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(
                text("SELECT count(*) FROM orchestrations WHERE tenant_id = :t"), {"t": tenant_id}
            ).scalar_one(),
            conn.execute(
                text("SELECT count(*) FROM jobs WHERE tenant_id = :t"), {"t": tenant_id}
            ).scalar_one(),
        )


def test_a_chain_reserves_every_steps_worst_case_and_cancelling_gives_it_all_back(
    api: httpx.Client, new_tenant: Callable[[], httpx.Client], engine: Engine
) -> None:
    tenant = new_tenant()
    budget_id = budget(api, tenant.tenant_id, "5")  # type: ignore[attr-defined]
    accepted = tenant.post("/v1/chains", json=chain()).json()
    with engine.connect() as conn:
        first = conn.execute(
            text("SELECT budget_holds FROM jobs WHERE parent_id = :id"), {"id": accepted["id"]}
        ).scalar_one()
        pending = conn.execute(
            text("SELECT pending_holds FROM orchestrations WHERE id = :id"), {"id": accepted["id"]}
        ).scalar_one()
    assert sorted(pending) == ["1", "2"]  # the later steps' holds wait for their steps
    holds = [first[0], pending["1"][0], pending["2"][0]]
    reserved, _ = held(tenant, budget_id)
    assert reserved == sum(Decimal(h["usd"]) for h in holds) > 0
    # The second step's prompt holds the first step's output: its worst case counts it.
    assert Decimal(holds[1]["usd"]) > Decimal(holds[2]["usd"])

    assert tenant.post(f"/v1/jobs/{accepted['id']}/cancel").status_code == 200
    assert held(tenant, budget_id) == (0, 0)


def test_a_chain_that_does_not_fit_its_budget_is_refused_whole(
    api: httpx.Client, new_tenant: Callable[[], httpx.Client], engine: Engine
) -> None:
    tenant = new_tenant()
    tenant_id = tenant.tenant_id  # type: ignore[attr-defined]
    budget(api, tenant_id, "0.0001")
    refused = tenant.post("/v1/chains", json=chain())
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "budget_exceeded"
    assert tenant_rows(engine, tenant_id) == (0, 0)


@pytest.mark.e2e
@pytest.mark.usefixtures("workers")
def test_a_chain_that_fails_midway_pays_what_it_ran_and_frees_the_rest(
    api: httpx.Client,
    new_tenant: Callable[[], httpx.Client],
    simulator: Simulator,
) -> None:
    simulator.configure(with_provider(default_config(), "sim-anthropic", down=True))
    tenant = new_tenant()
    budget_id = budget(api, tenant.tenant_id, "5")  # type: ignore[attr-defined]
    body = chain(first="sim-gpt-mini", second="sim-claude-haiku")
    failed = finished(tenant, tenant.post("/v1/chains", json=body).json()["id"])
    assert failed["status"] == "failed"
    assert len(failed["steps"]) == 2  # the third never ran: its reservation is released
    assert held(tenant, budget_id) == (0, Decimal(failed["cost_usd"]))


def test_an_idempotency_key_returns_the_same_chain(api: httpx.Client) -> None:
    headers = {"Idempotency-Key": f"chain-{id(api)}-{Decimal(1) / 3}"}
    first = api.post("/v1/chains", json=chain(), headers=headers).json()
    again = api.post("/v1/chains", json=chain(), headers=headers).json()
    assert (again["id"], again["created"], again["steps"]) == (first["id"], False, first["steps"])
    other = api.post("/v1/chains", json=chain(input="another"), headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    api.post(f"/v1/jobs/{first['id']}/cancel")


def test_a_tenant_sees_only_its_own_chains_and_their_steps(
    new_tenant: Callable[[], httpx.Client],
) -> None:
    alice, bob = new_tenant(), new_tenant()
    accepted = alice.post("/v1/chains", json=chain()).json()
    assert alice.get(f"/v1/jobs/{accepted['id']}").status_code == 200
    for path in (f"/v1/jobs/{accepted['id']}", f"/v1/jobs/{accepted['steps'][0]}"):
        response = bob.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "job_not_found"
    assert bob.post(f"/v1/jobs/{accepted['id']}/cancel").status_code == 404
    assert accepted["id"] not in [c["id"] for c in bob.get("/v1/chains").json()["data"]]
    assert accepted["id"] in [c["id"] for c in alice.get("/v1/chains").json()["data"]]
    alice.post(f"/v1/jobs/{accepted['id']}/cancel")


@pytest.mark.e2e
@pytest.mark.usefixtures("webhook_workers", "simulator")
def test_an_ensembles_end_is_sent_to_its_webhook(
    api: httpx.Client,
    receiver: Receiver,  # noqa: F811
) -> None:
    body = {
        "prompt": "Name a colour",
        "models": ["sim-gpt-mini", "sim-claude-haiku"],
        "synthesizer": "first_success",
        "webhook_url": receiver.url,
        "custom_id": "colour-1",
    }
    ensemble = finished(api, api.post("/v1/ensembles", json=body).json()["id"])
    assert ensemble["status"] == "succeeded"

    def delivered() -> bool:
        return receiver.count() >= 1

    wait_until(delivered, timeout=30)
    event = orjson.loads(receiver.received[0].body)
    assert event["type"] == "job.succeeded"
    assert event["data"]["id"] == ensemble["id"]
    assert (event["data"]["kind"], event["data"]["custom_id"]) == ("ensemble", "colour-1")
    # What was paid when it ended; a branch still being served then is added to the job later.
    assert 0 < Decimal(event["data"]["cost_usd"]) <= Decimal(ensemble["cost_usd"])
    assert receiver.count() == 1  # its branches send nothing of their own
