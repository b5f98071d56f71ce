"""The exact cache on single requests: what it reuses, what it never does, and for how long."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import openai
import orjson
import pytest
from sqlalchemy import Engine, text

from app.simulator.config import SimModel, default_config
from app.simulator.control import with_models
from tests.api.test_jobs_api import IDLE_MODEL
from tests.cache.conftest import (
    attempts_of,
    batch_jobs,
    calls,
    chat,
    in_flight,
    line,
    model_calls,
)
from tests.conftest import Simulator, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]

Tenants = Callable[[], httpx.Client]


def ask(client: httpx.Client, body: dict[str, Any], path: str = "/v1/chat/completions") -> Any:
    answer = client.post(path, json=body)
    assert answer.status_code == 200, answer.text
    return answer


def slow(simulator: Simulator, latency_ms: int = 1500) -> None:
    """sim-openai answers after ``latency_ms``: long enough for a second request to arrive."""
    change: Callable[[SimModel], SimModel] = lambda m: m.model_copy(  # noqa: E731
        update={"latency_ms": latency_ms, "jitter_ms": 0}
    )
    simulator.configure(with_models(default_config(), "sim-openai", change))


def test_an_identical_request_is_answered_from_the_cache_at_no_cost(
    new_tenant: Tenants, engine: Engine, simulator: Simulator
) -> None:
    tenant = new_tenant()
    first = ask(tenant, chat("Define idempotency in one line."))
    again = ask(tenant, chat("Define idempotency in one line."))
    assert calls(simulator) == 1
    assert first.headers["x-switchboard-cache"] == "exact:miss"
    assert again.headers["x-switchboard-cache"] == "exact:hit"
    assert again.headers["x-switchboard-cost-usd"] == "0"
    assert again.json()["choices"] == first.json()["choices"]
    assert again.json()["usage"] == first.json()["usage"]  # the answer's own usage, replayed

    source_id = first.headers["x-switchboard-job-id"]
    hit_id = again.headers["x-switchboard-job-id"]
    shown = tenant.get(f"/v1/jobs/{hit_id}").json()
    assert shown["status"] == "succeeded"
    assert shown["attempts"] == []
    assert shown["cost_usd"] == "0"
    paid = tenant.get(f"/v1/jobs/{source_id}").json()["cost_usd"]
    assert shown["cache"] == {
        "mode": "exact",
        "hit": True,
        "source_job_id": source_id,
        "similarity": None,
        "cost_saved_usd": paid,
    }
    assert attempts_of(engine, [hit_id]) == 0


def test_a_hit_streams_as_chunks_like_any_answer(
    new_tenant: Tenants, api_url: str, simulator: Simulator
) -> None:
    tenant = new_tenant()
    key = tenant.headers["authorization"].removeprefix("Bearer ")
    body = chat("List three primary colours.")
    whole = ask(tenant, body).json()["choices"][0]["message"]["content"]
    with openai.OpenAI(base_url=f"{api_url}/v1", api_key=key, max_retries=0) as sdk:
        stream = sdk.chat.completions.create(
            model=body["model"],
            messages=body["messages"],
            max_tokens=body["max_tokens"],
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    assert calls(simulator) == 1
    text_ = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text_ == whole
    assert chunks[-1].usage is not None
    extension = chunks[-1].model_extra["x_switchboard"]  # type: ignore[index]
    assert extension["cache"] == "exact:hit"
    assert extension["cost_usd"] == "0"


def test_completions_and_embeddings_are_cached_too(
    new_tenant: Tenants, simulator: Simulator
) -> None:
    tenant = new_tenant()
    prompt = {"model": "sim-gpt-mini", "prompt": "Once upon a time", "max_tokens": 12}
    first = ask(tenant, {**prompt, "temperature": 0}, "/v1/completions")
    again = ask(tenant, {**prompt, "temperature": 0}, "/v1/completions")
    assert again.headers["x-switchboard-cache"] == "exact:hit"
    assert again.json()["choices"][0]["text"] == first.json()["choices"][0]["text"]

    # Embeddings are deterministic: cached without asking, whatever encoding is asked for.
    inputs = {"model": "sim-embed-small", "input": ["a gateway", "a cache"]}
    floats = ask(tenant, {**inputs, "encoding_format": "float"}, "/v1/embeddings")
    packed = ask(tenant, {**inputs, "encoding_format": "base64"}, "/v1/embeddings")
    assert packed.headers["x-switchboard-cache"] == "exact:hit"
    assert packed.json()["usage"] == floats.json()["usage"]
    assert [d["index"] for d in packed.json()["data"]] == [0, 1]
    assert model_calls(simulator, "sim-gpt-mini") == 1
    assert model_calls(simulator, "sim-embed-small") == 1
    vectors = tenant.get(
        f"/v1/jobs/{packed.headers['x-switchboard-job-id']}", params={"vectors": "float"}
    ).json()["embeddings"]["data"]
    assert [v["embedding"] for v in vectors] == [d["embedding"] for d in floats.json()["data"]]


def test_sampled_requests_run_unless_the_caller_opts_in(
    new_tenant: Tenants, engine: Engine, simulator: Simulator
) -> None:
    tenant = new_tenant()
    unset = chat("Write a haiku about queues.")
    del unset["temperature"]  # providers sample by default: not deterministic
    warm = {**unset, "temperature": 0.7}
    for body in (unset, unset, warm, warm):
        assert "x-switchboard-cache" not in ask(tenant, body).headers
    assert calls(simulator) == 4

    opted = {**warm, "cache": {"mode": "exact"}}
    ask(tenant, opted)
    assert ask(tenant, opted).headers["x-switchboard-cache"] == "exact:hit"
    seeded = {**warm, "seed": 7}  # a fixed seed makes it deterministic enough to reuse
    ask(tenant, seeded)
    assert ask(tenant, seeded).headers["x-switchboard-cache"] == "exact:hit"
    off = {**chat("Write a haiku about queues."), "cache": {"mode": "off"}}
    for _ in range(2):
        assert "x-switchboard-cache" not in ask(tenant, off).headers
    assert calls(simulator) == 4 + 1 + 1 + 2


def test_what_changes_the_answer_is_a_new_request_and_what_does_not_is_the_same(
    new_tenant: Tenants, simulator: Simulator
) -> None:
    tenant = new_tenant()
    base = chat("Explain backpressure.")
    ask(tenant, base)
    same = [
        {**base, "user": "someone-else"},
        {**base, "metadata": {"team": "evals"}},
        {
            **base,
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": base["messages"][0]["content"]}],
                }
            ],
        },
        {k: v for k, v in base.items() if k != "messages"}
        | {"prompt": base["messages"][0]["content"]},
    ]
    different = [
        {**base, "max_tokens": 25},
        {**base, "temperature": 0, "top_p": 0.5},
        {**base, "stop": ["\n"]},
        {**base, "seed": 1},
        {**base, "model": ["sim-gpt-mini", "sim-gpt-large"]},
        {**base, "messages": [{"role": "system", "content": "Be brief."}, *base["messages"]]},
    ]
    path = "/v1/jobs"
    for body in same:
        created = tenant.post(path, json={**body, "priority": "high"})
        assert created.status_code == 202, created.text
        assert created.json()["status"] == "succeeded", body  # served as it was submitted
    ran = 0
    for body in different:
        created = tenant.post(path, json=body)
        assert created.status_code == 202, created.text
        assert created.json()["status"] == "queued", body
        ran += 1
    wait_until(lambda: calls(simulator) == 1 + ran, timeout=30)


def test_one_tenants_answer_is_never_served_to_another(
    new_tenant: Tenants, api: httpx.Client, simulator: Simulator
) -> None:
    a, b = new_tenant(), new_tenant()
    body = chat("What is our refund policy?")
    ask(a, body)
    assert ask(a, body).headers["x-switchboard-cache"] == "exact:hit"
    assert ask(b, body).headers["x-switchboard-cache"] == "exact:miss"
    assert calls(simulator) == 2
    assert a.get("/v1/cache").json()["entries"] == 1
    assert b.delete("/v1/cache").json()["deleted"] == 1  # b's own entry, not a's
    assert ask(a, body).headers["x-switchboard-cache"] == "exact:hit"
    purged = api.delete("/v1/cache", params={"tenant": a.tenant_id}).json()  # type: ignore[attr-defined]
    assert purged["deleted"] == 1
    assert ask(a, body).headers["x-switchboard-cache"] == "exact:miss"


def test_an_answer_is_reused_for_its_ttl_and_then_swept(
    new_tenant: Tenants, engine: Engine, simulator: Simulator
) -> None:
    tenant = new_tenant()
    body = {**chat("Say hello."), "cache": {"ttl": 1}}
    first = ask(tenant, body)
    assert ask(tenant, body).headers["x-switchboard-cache"] == "exact:hit"

    def entries() -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM cache_entries WHERE job_id = :j"),
                    {"j": first.headers["x-switchboard-job-id"]},
                ).scalar_one()
            )

    wait_until(lambda: entries() == 0, timeout=20)  # the reconciler deleted it, past its ttl
    assert ask(tenant, body).headers["x-switchboard-cache"] == "exact:miss"
    assert calls(simulator) == 2


def test_an_identical_request_in_flight_is_waited_for_not_run_again(
    new_tenant: Tenants, engine: Engine, simulator: Simulator
) -> None:
    tenant = new_tenant()
    slow(simulator)
    body = chat("Describe a lighthouse.")
    answers: list[httpx.Response] = []

    def send() -> None:
        answers.append(tenant.post("/v1/chat/completions", json=body))

    threads = [threading.Thread(target=send) for _ in range(3)]
    threads[0].start()
    wait_until(lambda: in_flight(simulator) == 1, timeout=20)  # the first is on the provider
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert calls(simulator) == 1
    caches = sorted(a.headers["x-switchboard-cache"] for a in answers)
    assert caches == ["exact:hit", "exact:hit", "exact:miss"]
    assert len({orjson.dumps(a.json()["choices"]) for a in answers}) == 1


def test_an_interactive_request_never_waits_behind_batch_traffic(
    new_tenant: Tenants, engine: Engine, simulator: Simulator
) -> None:
    tenant = new_tenant()
    slow(simulator)
    body = chat("Describe a harbour.")
    batch = tenant.post(
        "/v1/batches", json={"requests": [line("b-0", body["messages"][0]["content"])]}
    )
    assert batch.status_code == 200
    wait_until(lambda: in_flight(simulator) == 1, timeout=20)  # the batch's job is on the provider
    answer = ask(tenant, body)  # high priority: runs itself rather than wait for a low job
    assert answer.headers["x-switchboard-cache"] == "exact:miss"
    assert calls(simulator) == 2


def test_when_the_job_waited_for_ends_unanswered_its_waiters_run(
    new_tenant: Tenants, engine: Engine
) -> None:
    tenant = new_tenant()
    # Nothing serves IDLE_MODEL here: the first job stays queued, the repeats wait for it.
    lines = [{**line(f"w-{i}", "Plan a trip."), "model": IDLE_MODEL} for i in range(3)]
    batch = tenant.post("/v1/batches", json={"requests": lines}).json()
    jobs = batch_jobs(engine, batch["id"])
    assert [j.status for j in jobs] == ["queued", "waiting", "waiting"]
    cancelled = tenant.post(f"/v1/jobs/{jobs[0].id}/cancel")
    assert cancelled.status_code == 200, cancelled.text

    def released() -> bool:  # by the reconciler's sweep: the cancellation did not settle it
        return [j.status for j in batch_jobs(engine, batch["id"])] == [
            "cancelled",
            "queued",
            "queued",
        ]

    wait_until(released, timeout=20)
    assert {j.cache for j in batch_jobs(engine, batch["id"])[1:]} == {"exact:miss"}
    tenant.post(f"/v1/batches/{batch['id']}/cancel")


def test_stats_and_cache_listing_count_hits_misses_and_savings(
    new_tenant: Tenants, simulator: Simulator
) -> None:
    tenant = new_tenant()
    body = chat("Count to three.")
    first = ask(tenant, body)
    for _ in range(3):
        ask(tenant, body)
    paid = Decimal(first.headers["x-switchboard-cost-usd"])
    cache = tenant.get("/v1/stats").json()["overall"]["cache"]
    assert (cache["hits"], cache["misses"], cache["hit_rate"]) == (3, 1, 0.75)
    assert Decimal(cache["cost_saved_usd"]) == 3 * paid
    listing = tenant.get("/v1/cache").json()
    assert listing["entries"] == 1
    assert listing["by_model"] == [{"model": "sim-gpt-mini", "entries": 1, "hits": 3}]
    assert listing["default_mode"] == "exact"
    purged = tenant.delete("/v1/cache", params={"model": "sim-gpt-large"}).json()
    assert purged["deleted"] == 0
    assert tenant.delete("/v1/cache", params={"model": "sim-gpt-mini"}).json()["deleted"] == 1
    assert ask(tenant, body).headers["x-switchboard-cache"] == "exact:miss"


def test_a_hit_at_submission_writes_its_webhook_event_with_the_job(
    new_tenant: Tenants, engine: Engine
) -> None:
    tenant = new_tenant()
    body = {**chat("Ping."), "webhook_url": "http://127.0.0.1:9/hook"}
    first = tenant.post("/v1/jobs", json=body).json()
    wait_until(lambda: tenant.get(f"/v1/jobs/{first['id']}").json()["status"] == "succeeded")
    hit = tenant.post("/v1/jobs", json=body).json()
    assert hit["status"] == "succeeded"
    with engine.connect() as conn:
        (event,) = conn.execute(
            text("SELECT type, url, payload FROM webhook_events WHERE job_id = :j"),
            {"j": hit["id"]},
        ).all()
    assert (event.type, event.url) == ("job.succeeded", body["webhook_url"])
    assert event.payload["data"]["cost_usd"] == "0"
