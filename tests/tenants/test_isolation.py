"""A tenant can neither see nor touch another tenant's jobs, batches or usage."""

from __future__ import annotations

from collections.abc import Callable

import httpx

JOB = {"model": "sim-gemini-flash", "prompt": "mine, not yours", "max_tokens": 5}


def test_another_tenants_job_is_invisible_and_untouchable(
    new_tenant: Callable[[], httpx.Client], api: httpx.Client
) -> None:
    alice, bob = new_tenant(), new_tenant()
    job_id = alice.post("/v1/jobs", json=JOB).json()["id"]

    assert alice.get(f"/v1/jobs/{job_id}").status_code == 200
    read = bob.get(f"/v1/jobs/{job_id}")
    assert read.status_code == 404
    assert read.json()["error"]["code"] == "job_not_found"
    cancel = bob.post(f"/v1/jobs/{job_id}/cancel")
    assert cancel.status_code == 404
    assert alice.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"

    assert job_id in {j["id"] for j in alice.get("/v1/jobs").json()["data"]}
    assert bob.get("/v1/jobs").json()["data"] == []
    assert bob.get("/v1/jobs", params={"status": "queued"}).json()["data"] == []
    # The operator sees across tenants.
    assert api.get(f"/v1/jobs/{job_id}").status_code == 200

    # The owner may cancel it; cancelling twice is harmless.
    cancelled = alice.post(f"/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert alice.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"


def test_idempotency_keys_are_per_tenant(new_tenant: Callable[[], httpx.Client]) -> None:
    alice, bob = new_tenant(), new_tenant()
    headers = {"Idempotency-Key": "same-key"}
    a = alice.post("/v1/jobs", json=JOB, headers=headers).json()
    b = bob.post("/v1/jobs", json=JOB, headers=headers).json()
    assert a["created"]
    assert b["created"]
    assert a["id"] != b["id"]
    again = alice.post("/v1/jobs", json=JOB, headers=headers).json()
    assert again["id"] == a["id"]
    assert not again["created"]


def test_another_tenants_batch_and_usage_are_invisible(
    new_tenant: Callable[[], httpx.Client],
) -> None:
    alice, bob = new_tenant(), new_tenant()
    body = {"requests": [{**JOB, "custom_id": f"r{i}"} for i in range(3)]}
    batch = alice.post("/v1/batches", json=body).json()
    batch_id = batch["id"]

    assert alice.get(f"/v1/batches/{batch_id}").status_code == 200
    for path in (f"/v1/batches/{batch_id}", f"/v1/batches/{batch_id}/results"):
        response = bob.get(path)
        assert response.status_code == 404, path
    assert bob.get("/v1/jobs", params={"batch_id": batch_id}).json()["data"] == []
    assert len(alice.get("/v1/jobs", params={"batch_id": batch_id}).json()["data"]) == 3

    assert bob.get("/v1/usage").json()["data"] == []
    mine = alice.get("/v1/usage").json()["data"]
    assert sum(row["jobs"] for row in mine) == 3


def test_a_running_or_finished_job_cannot_be_cancelled(
    new_tenant: Callable[[], httpx.Client], engine: object
) -> None:
    alice = new_tenant()
    job_id = alice.post("/v1/jobs", json=JOB).json()["id"]
    from sqlalchemy import Engine, text

    assert isinstance(engine, Engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET status = 'running' WHERE id = :id"), {"id": job_id})
    response = alice.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "job_running"
    with engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET status = 'failed' WHERE id = :id"), {"id": job_id})
    response = alice.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "job_finished"


def test_reports_show_a_tenant_only_its_own(new_tenant: Callable[[], httpx.Client]) -> None:
    alice, bob = new_tenant(), new_tenant()
    alice.post("/v1/jobs", json=JOB)
    for client in (alice, bob):
        by_tenant = client.get("/v1/costs", params={"group_by": "tenant"})
        assert by_tenant.status_code == 403
        assert by_tenant.json()["error"]["code"] == "admin_required"
        stats = client.get("/v1/stats", params={"tenant": "default"})
        assert stats.status_code == 200
        assert stats.json()["tenant"] == client.tenant_id  # type: ignore[attr-defined]
