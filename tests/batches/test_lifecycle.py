"""A batch's end other than completion, on real workers: cancelled (at once, or after its
running requests finish) and expired (the reconciler, once the window has passed)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import httpx
import openai
import pytest
from sqlalchemy import Engine, text

from app.simulator.config import SimModel, default_config
from app.simulator.control import with_models
from tests.api.test_jobs_api import IDLE_MODEL
from tests.batches.conftest import Tenant, request
from tests.conftest import Simulator, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]

CANCELLED = {
    "code": "batch_cancelled",
    "message": "This request was not executed because the batch was cancelled.",
}
EXPIRED = {
    "code": "batch_expired",
    "message": "This request could not be executed before the completion window expired.",
}


def statuses(engine: Engine, batch_id: str) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT custom_id, status FROM jobs WHERE batch_id = :b"), {"b": batch_id}
        ).all()
    return {r.custom_id: r.status for r in rows}


def test_cancelling_a_batch_nothing_runs_for_ends_it_at_once_and_frees_its_budget(
    tenant: Tenant, api: httpx.Client, engine: Engine
) -> None:
    created = api.post(
        "/v1/budgets", json={"tenant_id": tenant.id, "period": "day", "limit_usd": "10"}
    ).json()
    # No worker serves it here: it stays queued, and it has a price, so it holds budget.
    batch = tenant.run([request(f"r{i}", "sim-gemini-flash") for i in range(4)])
    held = tenant.http.get(f"/v1/budgets/{created['id']}").json()
    assert Decimal(held["reserved_usd"]) > 0

    cancelled = tenant.sdk.batches.cancel(batch.id)
    assert cancelled.status == "cancelled"
    assert cancelled.cancelling_at is not None
    assert cancelled.cancelled_at is not None
    assert cancelled.request_counts is not None
    assert cancelled.request_counts.model_dump() == {"total": 4, "completed": 0, "failed": 0}
    assert cancelled.output_file_id is None
    assert set(statuses(engine, batch.id).values()) == {"cancelled"}
    errors = tenant.lines_of(cancelled.error_file_id)
    assert set(errors) == {"r0", "r1", "r2", "r3"}
    assert {(line["response"], str(line["error"])) for line in errors.values()} == {
        (None, str(CANCELLED))
    }
    held = tenant.http.get(f"/v1/budgets/{created['id']}").json()
    assert Decimal(held["reserved_usd"]) == 0
    assert Decimal(held["spent_usd"]) == 0

    assert tenant.sdk.batches.cancel(batch.id).status == "cancelled"  # again: harmless


def test_a_finished_batch_cannot_be_cancelled(tenant: Tenant) -> None:
    batch = tenant.wait(tenant.run([request("r", "sim-gpt-mini")]).id)
    with pytest.raises(openai.ConflictError) as raised:
        tenant.sdk.batches.cancel(batch.id)
    assert raised.value.code == "batch_not_cancellable"
    assert tenant.sdk.batches.retrieve(batch.id).status == "completed"


def test_a_cancelled_batch_lets_its_running_request_finish(
    tenant: Tenant, engine: Engine, simulator: Simulator
) -> None:
    def slow(spec: SimModel) -> SimModel:
        return spec.model_copy(update={"latency_ms": 2500.0, "jitter_ms": 0.0})

    simulator.configure(with_models(default_config(), "sim-anthropic", slow))
    lines = [request("slow", "sim-claude-haiku")] + [request(f"q{i}", IDLE_MODEL) for i in range(3)]
    batch = tenant.run(lines)
    wait_until(lambda: statuses(engine, batch.id)["slow"] == "running", timeout=30)

    cancelling = tenant.sdk.batches.cancel(batch.id)
    assert cancelling.status == "cancelling"
    assert cancelling.cancelling_at is not None
    assert cancelling.cancelled_at is None
    assert statuses(engine, batch.id) == {
        "slow": "running",
        "q0": "cancelled",
        "q1": "cancelled",
        "q2": "cancelled",
    }

    ended = tenant.wait(batch.id, "cancelled")
    assert ended.request_counts is not None
    assert ended.request_counts.model_dump() == {"total": 4, "completed": 1, "failed": 0}
    output = tenant.lines_of(ended.output_file_id)  # the partial results
    assert set(output) == {"slow"}
    assert output["slow"]["response"]["status_code"] == 200
    assert set(tenant.lines_of(ended.error_file_id)) == {"q0", "q1", "q2"}


def test_a_batch_past_its_window_expires_and_keeps_what_finished(
    tenants: Callable[[], Tenant], engine: Engine
) -> None:
    tenant = tenants()
    lines = [request("done-0", "sim-gpt-mini"), request("done-1", "sim-gpt-mini")]
    lines += [request(f"late-{i}", IDLE_MODEL) for i in range(3)]
    batch = tenant.run(lines)
    wait_until(
        lambda: tenant.sdk.batches.retrieve(batch.id).request_counts.completed == 2,  # type: ignore[union-attr]
        timeout=30,
    )
    with engine.begin() as conn:  # the 24 hours pass
        conn.execute(
            text("UPDATE batches SET expires_at = now() - interval '1 second' WHERE id = :b"),
            {"b": batch.id},
        )

    expired = tenant.wait(batch.id, "expired")  # the reconciler runs every second here
    assert expired.expired_at is not None
    assert expired.completed_at is None
    assert expired.request_counts is not None
    assert expired.request_counts.model_dump() == {"total": 5, "completed": 2, "failed": 0}
    assert set(tenant.lines_of(expired.output_file_id)) == {"done-0", "done-1"}
    errors = tenant.lines_of(expired.error_file_id)
    assert set(errors) == {"late-0", "late-1", "late-2"}
    assert all(line["response"] is None for line in errors.values())
    assert all(line["error"] == EXPIRED for line in errors.values())
    assert set(statuses(engine, batch.id).values()) == {"succeeded", "cancelled"}
