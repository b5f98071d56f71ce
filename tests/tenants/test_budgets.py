"""Budgets: a job reserves its worst case before dispatch and settles to its real cost, so
concurrent submissions cannot overspend; a job that does not fit is refused with nothing
recorded."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import Engine, text

from app.budgets.worst_case import worst_case_usd
from app.jobs.schemas import JobCreate
from app.registry.service import Registry, load_registry
from app.simulator.config import SimModel, default_config
from app.simulator.control import with_models
from tests.conftest import Simulator, wait_for_jobs, wait_until

MAX_TOKENS = 400
JOB = {
    "model": "sim-gpt-large",
    "messages": [{"role": "user", "content": "count to three"}],
    "max_tokens": MAX_TOKENS,
}


@pytest.fixture
def registry(db: object) -> Registry:
    from sqlalchemy.orm import Session

    assert isinstance(db, Session)
    return load_registry(db)


def worst_case(registry: Registry, body: dict[str, object]) -> Decimal:
    spec = JobCreate.model_validate(body)
    return worst_case_usd(spec.to_request(), [registry.model(m) for m in spec.model_chain])


def budget(api: httpx.Client, tenant_id: str, limit: Decimal, **extra: str) -> dict[str, str]:
    body = {"tenant_id": tenant_id, "period": "day", "limit_usd": str(limit), **extra}
    response = api.post("/v1/budgets", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.mark.e2e
def test_n_concurrent_jobs_against_a_budget_for_half_never_overspend(
    api: httpx.Client,
    new_tenant: Callable[[], httpx.Client],
    registry: Registry,
    engine: Engine,
    workers: object,
    simulator: Simulator,
) -> None:
    # Answers slower than the submissions take, so that no job settles (and frees its
    # reservation) while the others are still being submitted: exactly half must fit.
    def slow(spec: SimModel) -> SimModel:
        return spec.model_copy(update={"latency_ms": 2500.0, "jitter_ms": 0.0})

    simulator.configure(with_models(default_config(), "sim-openai", slow))
    n = 24
    tenant = new_tenant()
    tenant_id = tenant.tenant_id  # type: ignore[attr-defined]
    worst = worst_case(registry, JOB)
    limit = worst * (n // 2)
    created = budget(api, tenant_id, limit)

    def submit(_: int) -> httpx.Response:
        return tenant.post("/v1/jobs", json=JOB)

    with ThreadPoolExecutor(max_workers=n) as pool:
        responses = list(pool.map(submit, range(n)))

    accepted = [r.json()["id"] for r in responses if r.status_code == 202]
    refused = [r for r in responses if r.status_code != 202]
    assert len(accepted) == n // 2, [r.text for r in refused]
    assert {r.status_code for r in refused} == {402}, [r.text for r in refused]
    assert {r.json()["error"]["code"] for r in refused} == {"budget_exceeded"}
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM jobs WHERE tenant_id = :t"), {"t": tenant_id}
        ).scalar_one()
    assert stored == n // 2  # nothing half-recorded for the refused ones

    held = api.get(f"/v1/budgets/{created['id']}").json()
    assert Decimal(held["spent_usd"]) + Decimal(held["reserved_usd"]) <= limit

    assert set(wait_for_jobs(engine, accepted).values()) == {"succeeded"}
    with engine.connect() as conn:
        actual = conn.execute(
            text("SELECT sum(cost_usd) FROM jobs WHERE tenant_id = :t"), {"t": tenant_id}
        ).scalar_one()
    settled = api.get(f"/v1/budgets/{created['id']}").json()
    assert Decimal(settled["reserved_usd"]) == 0
    assert Decimal(settled["spent_usd"]) == actual
    assert actual <= limit
    # What the real answers did not use is free again: one more job fits now.
    assert tenant.post("/v1/jobs", json=JOB).status_code == 202


def test_a_batch_that_does_not_fit_is_refused_whole(
    api: httpx.Client,
    new_tenant: Callable[[], httpx.Client],
    registry: Registry,
    engine: Engine,
) -> None:
    tenant = new_tenant()
    tenant_id = tenant.tenant_id  # type: ignore[attr-defined]
    body = {**JOB, "model": "sim-gemini-flash"}
    worst = worst_case(registry, body)
    budget(api, tenant_id, worst * 5, project="labelling")

    requests = [{**body, "custom_id": f"r{i}"} for i in range(6)]
    too_many = tenant.post("/v1/batches", json={"requests": requests, "project": "labelling"})
    assert too_many.status_code == 402
    assert too_many.json()["error"]["code"] == "budget_exceeded"
    assert "project labelling" in too_many.json()["error"]["message"]
    with engine.connect() as conn:
        count = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM jobs WHERE tenant_id = :t) "
                "+ (SELECT count(*) FROM batches WHERE tenant_id = :t)"
            ),
            {"t": tenant_id},
        ).scalar_one()
    assert count == 0

    # Another project of the same tenant has no budget: not limited.
    other = tenant.post("/v1/batches", json={"requests": requests, "project": "evals"})
    assert other.status_code == 200
    fits = tenant.post("/v1/batches", json={"requests": requests[:5], "project": "labelling"})
    assert fits.status_code == 200, fits.text


def test_cancelling_gives_the_reservation_back(
    api: httpx.Client,
    new_tenant: Callable[[], httpx.Client],
    registry: Registry,
) -> None:
    tenant = new_tenant()
    tenant_id = tenant.tenant_id  # type: ignore[attr-defined]
    body = {**JOB, "model": "sim-gemini-flash"}  # no worker serves it here: stays queued
    worst = worst_case(registry, body)
    created = budget(api, tenant_id, worst)
    job_id = tenant.post("/v1/jobs", json=body).json()["id"]
    assert tenant.post("/v1/jobs", json=body).status_code == 402
    state = tenant.get(f"/v1/budgets/{created['id']}").json()
    assert Decimal(state["reserved_usd"]) == worst
    assert Decimal(state["remaining_usd"]) == 0

    assert tenant.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    state = tenant.get(f"/v1/budgets/{created['id']}").json()
    assert Decimal(state["reserved_usd"]) == 0
    assert Decimal(state["spent_usd"]) == 0
    assert tenant.post("/v1/jobs", json=body).status_code == 202


def test_a_per_request_budget_caps_each_jobs_worst_case(
    api: httpx.Client, new_tenant: Callable[[], httpx.Client], registry: Registry
) -> None:
    tenant = new_tenant()
    tenant_id = tenant.tenant_id  # type: ignore[attr-defined]
    cheap = {**JOB, "model": "sim-gemini-flash", "max_tokens": 10}
    dear = {**JOB, "model": "sim-gemini-flash", "max_tokens": 4000}
    cap = (worst_case(registry, cheap) + worst_case(registry, dear)) / 2
    response = api.post(
        "/v1/budgets",
        json={"tenant_id": tenant_id, "period": "request", "limit_usd": str(cap)},
    )
    assert response.status_code == 201
    assert tenant.post("/v1/jobs", json=cheap).status_code == 202
    refused = tenant.post("/v1/jobs", json=dear)
    assert refused.status_code == 402
    assert "per-request budget" in refused.json()["error"]["message"]


def test_budgets_are_visible_to_their_tenant_only(
    api: httpx.Client, new_tenant: Callable[[], httpx.Client]
) -> None:
    alice, bob = new_tenant(), new_tenant()
    mine = budget(api, alice.tenant_id, Decimal("5"))  # type: ignore[attr-defined]
    assert [b["id"] for b in alice.get("/v1/budgets").json()["data"]] == [mine["id"]]
    assert bob.get("/v1/budgets").json()["data"] == []
    assert bob.get(f"/v1/budgets/{mine['id']}").status_code == 404
    again = api.post(
        "/v1/budgets",
        json={"tenant_id": alice.tenant_id, "period": "day", "limit_usd": "9"},  # type: ignore[attr-defined]
    )
    assert again.status_code == 409
    changed = api.patch(f"/v1/budgets/{mine['id']}", json={"limit_usd": "7.5"})
    assert changed.json()["limit_usd"] == "7.5"
    bad = api.post("/v1/budgets", json={"tenant_id": "nobody", "period": "day", "limit_usd": "1"})
    assert bad.status_code == 404
    negative = api.post(
        "/v1/budgets",
        json={"tenant_id": alice.tenant_id, "period": "week", "limit_usd": "-1"},  # type: ignore[attr-defined]
    )
    assert negative.status_code == 400
    assert api.delete(f"/v1/budgets/{mine['id']}").status_code == 204
    wait_until(lambda: alice.get("/v1/budgets").json()["data"] == [])
