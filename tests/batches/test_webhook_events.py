"""A batch's end as OpenAI's webhook event, which the openai SDK verifies and parses."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
from sqlalchemy import Engine, text

from tests.api.test_jobs_api import IDLE_MODEL
from tests.batches.conftest import Tenant, request
from tests.conftest import wait_until
from tests.webhooks.conftest import Receiver, receiver, webhook_workers  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("webhook_workers", "simulator")]


def secret_for(tenant: Tenant, url: str) -> str:
    created = tenant.http.post("/v1/webhooks/endpoints", json={"url": url})
    assert created.status_code == 201, created.text
    secret: str = created.json()["secret"]
    return secret


def events(tenant: Tenant, receiver: Receiver, secret: str, count: int) -> list[object]:  # noqa: F811
    wait_until(lambda: receiver.count() >= count, timeout=30, every=0.1)
    return [
        tenant.sdk.webhooks.unwrap(got.body, got.headers, secret=secret)
        for got in receiver.received
    ]


def test_every_end_of_a_batch_is_an_event_the_sdk_verifies(
    tenants: Callable[[], Tenant],
    receiver: Receiver,  # noqa: F811
    engine: Engine,
) -> None:
    tenant = tenants()
    secret = secret_for(tenant, receiver.url)
    hook = {"extra_body": {"webhook_url": receiver.url}}
    completed = tenant.run([request("a", "sim-gpt-mini")], **hook)
    failed = tenant.run([request("a", "sim-gpt-mini"), request("a", "sim-gpt-mini")], **hook)
    assert failed.status == "failed"
    cancelled = tenant.run([request("a", IDLE_MODEL)], **hook)
    tenant.sdk.batches.cancel(cancelled.id)
    expired = tenant.run([request("a", IDLE_MODEL)], **hook)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE batches SET expires_at = now() - interval '1 second' WHERE id = :b"),
            {"b": expired.id},
        )

    got = events(tenant, receiver, secret, 4)
    by_batch = {event.data.id: event for event in got}  # type: ignore[attr-defined]
    assert {b: e.type for b, e in by_batch.items()} == {  # type: ignore[attr-defined]
        completed.id: "batch.completed",
        failed.id: "batch.failed",
        cancelled.id: "batch.cancelled",
        expired.id: "batch.expired",
    }
    for event in got:
        assert event.id.startswith("evt_")  # type: ignore[attr-defined]
    body = orjson.loads(receiver.received[0].body)
    assert set(body) == {"id", "object", "type", "created_at", "data"}  # thin: fetch the batch
    assert tenant.sdk.batches.retrieve(completed.id).status == "completed"
    assert receiver.count() == 4  # one event per batch, none per job


def test_a_batch_without_a_webhook_sends_nothing(
    tenant: Tenant,
    receiver: Receiver,  # noqa: F811
) -> None:
    secret_for(tenant, receiver.url)  # an endpoint exists, but nothing names it
    batch = tenant.wait(tenant.run([request("a", "sim-gpt-mini")]).id)
    assert batch.status == "completed"
    deliveries = tenant.http.get("/v1/webhooks/deliveries", params={"batch_id": batch.id})
    assert deliveries.json()["data"] == []
    assert receiver.count() == 0
