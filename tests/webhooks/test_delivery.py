"""Webhooks end to end: a real receiver on 127.0.0.1, the API, workers and the delivery pool."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from app.cli.stack import Stack
from app.client import WebhookVerificationError, verify_webhook
from app.webhooks.signing import verify
from tests.conftest import wait_for_jobs, wait_until
from tests.webhooks.conftest import Receiver

MODEL = "sim-gpt-mini"
pytestmark = pytest.mark.usefixtures("webhook_workers", "simulator")


def register(client: httpx.Client, url: str) -> dict[str, Any]:
    created = client.post("/v1/webhooks/endpoints", json={"url": url})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    assert body["secret"].startswith("whsec_")
    return body


def submit(client: httpx.Client, **extra: Any) -> str:
    body = {"model": MODEL, "prompt": "Hello", "max_tokens": 8, **extra}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def deliveries(client: httpx.Client, **params: str) -> list[dict[str, Any]]:
    response = client.get("/v1/webhooks/deliveries", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def settled(client: httpx.Client, status: str, **params: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def done() -> bool:
        nonlocal found
        found = deliveries(client, **params)
        return len(found) == 1 and found[0]["status"] == status

    wait_until(done, timeout=30, every=0.2)
    return found[0]


def test_a_failed_delivery_is_retried_and_both_tries_are_signed_and_recorded(
    api: httpx.Client, receiver: Receiver, engine: Engine
) -> None:
    secret = register(api, receiver.url)["secret"]
    receiver.answer((500, {}), (200, {}))
    job_id = submit(api, webhook_url=receiver.url)
    assert wait_for_jobs(engine, [job_id]) == {job_id: "succeeded"}

    delivery = settled(api, "delivered", job_id=job_id)
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    assert delivery["attempts"][0]["next_attempt_at"] is not None
    assert receiver.count() == 2
    first, second = receiver.received
    # What a receiver does with the client's helper: it raises unless signed with the secret.
    events = [verify_webhook(secret, got.headers, got.body) for got in (first, second)]
    assert {got.path for got in (first, second)} == {"/hook"}
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery["id"]
    assert events[0] == events[1]
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, second.headers, second.body.replace(b"succeeded", b"failed"))
    event = events[1]
    assert event["type"] == "job.succeeded"
    assert event["data"]["id"] == job_id
    assert event["data"]["status"] == "succeeded"
    assert event["data"]["model"] == MODEL
    assert float(event["data"]["cost_usd"]) > 0
    assert "error" not in event["data"]


def test_410_gone_disables_the_endpoint_and_stops_deliveries(
    api: httpx.Client, receiver: Receiver, engine: Engine
) -> None:
    endpoint = register(api, receiver.url)
    receiver.answer((410, {}))
    first = submit(api, webhook_url=receiver.url)
    assert settled(api, "disabled", job_id=first)["attempts"][0]["status_code"] == 410
    listed = {e["id"]: e for e in api.get("/v1/webhooks/endpoints").json()["data"]}
    assert listed[endpoint["id"]]["enabled"] is False
    assert "410" in listed[endpoint["id"]]["disabled_reason"]
    assert listed[endpoint["id"]]["secret"].startswith("whsec_…")  # masked from now on

    second = submit(api, webhook_url=receiver.url)
    assert wait_for_jobs(engine, [second]) == {second: "succeeded"}
    settled(api, "disabled", job_id=second)
    assert receiver.count() == 1  # nothing more was sent to the gone receiver
    redeliver = api.post(
        f"/v1/webhooks/deliveries/{deliveries(api, job_id=first)[0]['id']}/redeliver"
    )
    assert redeliver.status_code == 409
    assert redeliver.json()["error"]["code"] == "webhook_endpoint_disabled"


def test_retry_after_from_the_receiver_is_honoured(api: httpx.Client, receiver: Receiver) -> None:
    register(api, receiver.url)
    # The test stack's own backoff is capped at 1 s: only honouring the header waits 2.
    receiver.answer((429, {"retry-after": "2"}), (200, {}))
    job_id = submit(api, webhook_url=receiver.url)
    delivery = settled(api, "delivered", job_id=job_id)
    assert [a["status_code"] for a in delivery["attempts"]] == [429, 200]
    first, second = receiver.received
    assert second.at - first.at >= 1.9


def test_a_batch_webhook_gets_one_batch_event_and_no_job_events(
    api: httpx.Client, receiver: Receiver, engine: Engine
) -> None:
    register(api, receiver.url)
    requests = [{"custom_id": f"r{i}", "model": MODEL, "prompt": "Hi"} for i in range(3)]
    created = api.post("/v1/batches", json={"requests": requests, "webhook_url": receiver.url})
    assert created.status_code == 200, created.text
    batch_id = created.json()["id"]
    delivery = settled(api, "delivered", batch_id=batch_id)
    assert delivery["type"] == "batch.completed"
    assert delivery["job_id"] is None
    event = orjson.loads(receiver.received[0].body)
    assert event["type"] == "batch.completed"
    assert event["data"] == {"id": batch_id}  # OpenAI's thin event: the batch is fetched
    assert event["id"].startswith("evt_")
    assert api.get(f"/v1/batches/{batch_id}").json()["request_counts"] == {
        "total": 3,
        "completed": 3,
        "failed": 0,
    }
    assert receiver.count() == 1


def test_redelivery_sends_the_same_event_again_with_a_fresh_signature(
    api: httpx.Client, receiver: Receiver
) -> None:
    secret = register(api, receiver.url)["secret"]
    job_id = submit(api, webhook_url=receiver.url)
    delivery = settled(api, "delivered", job_id=job_id)
    again = api.post(f"/v1/webhooks/deliveries/{delivery['id']}/redeliver")
    assert again.status_code == 202, again.text
    wait_until(lambda: receiver.count() == 2, timeout=20)
    assert receiver.received[1].headers["webhook-id"] == delivery["id"]
    verify(secret, receiver.received[1].headers, receiver.received[1].body)
    assert len(settled(api, "delivered", job_id=job_id)["attempts"]) == 2


def test_a_tenants_default_webhook_is_used_and_its_secret_comes_from_rotation(
    api: httpx.Client, new_tenant: Any, receiver: Receiver, engine: Engine
) -> None:
    tenant = new_tenant()
    path = f"/v1/tenants/{tenant.tenant_id}/webhook"
    refused = tenant.put(path, json={"url": receiver.url})
    assert refused.status_code == 403  # gateway configuration: the admin's
    assert api.put(path, json={"url": receiver.url}).status_code == 200
    [endpoint] = tenant.get("/v1/webhooks/endpoints").json()["data"]
    rotated = tenant.post(f"/v1/webhooks/endpoints/{endpoint['id']}/rotate").json()
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != endpoint["secret"]

    job_id = submit(tenant)  # no webhook_url of its own
    settled(tenant, "delivered", job_id=job_id)
    verify(rotated["secret"], receiver.received[0].headers, receiver.received[0].body)


def test_deliveries_and_endpoints_are_tenant_scoped(
    new_tenant: Any, receiver: Receiver, engine: Engine
) -> None:
    owner, other = new_tenant(), new_tenant()
    endpoint = register(owner, receiver.url)
    job_id = submit(owner, webhook_url=receiver.url)
    delivery = settled(owner, "delivered", job_id=job_id)

    assert deliveries(other) == []
    assert deliveries(other, job_id=job_id) == []
    assert other.get("/v1/webhooks/endpoints").json()["data"] == []
    assert other.post(f"/v1/webhooks/deliveries/{delivery['id']}/redeliver").status_code == 404
    assert other.post(f"/v1/webhooks/endpoints/{endpoint['id']}/rotate").status_code == 404
    # The same URL is the other tenant's own endpoint, with its own secret.
    assert register(other, receiver.url)["id"] != endpoint["id"]


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hook", "http://no-such-host.invalid/hook", "gopher://x"]
)
def test_unusable_webhook_urls_are_refused_at_submission(api: httpx.Client, url: str) -> None:
    for response in (
        api.post("/v1/jobs", json={"model": MODEL, "prompt": "Hi", "webhook_url": url}),
        api.post("/v1/webhooks/endpoints", json={"url": url}),
    ):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "webhook_url_forbidden"


def test_the_delivery_pool_is_running(webhook_workers: Stack) -> None:
    assert all(child.alive() for child in webhook_workers.workers["webhooks"])


def test_an_event_written_without_a_publish_is_delivered_by_the_sweep(
    api: httpx.Client, receiver: Receiver, engine: Engine
) -> None:
    # A model no test worker serves: the reconciler fails the job at its deadline, writing the
    # event in that statement and publishing nothing; only the outbox sweep can send it.
    secret = register(api, receiver.url)["secret"]
    job_id = submit(api, model="sim-llama-small", deadline_s=0.5, webhook_url=receiver.url)
    assert wait_for_jobs(engine, [job_id], timeout=30) == {job_id: "failed"}
    delivery = settled(api, "delivered", job_id=job_id)
    assert delivery["type"] == "job.failed"
    verify(secret, receiver.received[0].headers, receiver.received[0].body)
    event = orjson.loads(receiver.received[0].body)
    assert event["data"]["error"]["class"] == "deadline"
    assert event["data"]["model"] == "sim-llama-small"


def test_a_job_without_any_webhook_writes_no_event(api: httpx.Client, engine: Engine) -> None:
    job_id = submit(api)
    assert wait_for_jobs(engine, [job_id]) == {job_id: "succeeded"}
    assert deliveries(api, job_id=job_id) == []
