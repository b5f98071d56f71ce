"""A batch with repeated prompts: the first occurrence of each runs, every repeat is a hit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import Engine

from tests.cache.conftest import attempts_of, batch_jobs, calls, line, wait_for_batch
from tests.conftest import Simulator

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]


def test_a_batch_of_100_lines_with_20_prompts_makes_20_calls_and_80_free_hits(
    new_tenant: Callable[[], httpx.Client], api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    tenant = new_tenant()
    budget = api.post(
        "/v1/budgets",
        json={"tenant_id": tenant.tenant_id, "period": "day", "limit_usd": "5"},  # type: ignore[attr-defined]
    )
    assert budget.status_code == 201, budget.text
    prompts = [f"Summarise chapter {n} of the gateway manual." for n in range(20)]
    lines = [line(f"q-{i:03d}", prompts[i % 20]) for i in range(100)]  # repeats interleaved
    submitted = tenant.post("/v1/batches", json={"requests": lines})
    assert submitted.status_code == 200, submitted.text

    batch = wait_for_batch(tenant, submitted.json()["id"])
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 100, "completed": 100, "failed": 0}
    assert calls(simulator) == 20

    jobs = batch_jobs(engine, batch["id"])
    ran = [j for j in jobs if j.cache == "exact:miss"]
    hits = [j for j in jobs if j.cache == "exact:hit"]
    assert (len(ran), len(hits)) == (20, 80)
    by_id = {j.id: j for j in jobs}
    for hit in hits:
        source = by_id[hit.cache_source_job_id]  # the first occurrence, in the same batch
        assert source.cache == "exact:miss"
        assert hit.result == source.result
        assert hit.served_model == source.served_model == "sim-gpt-mini"
        assert hit.cost_usd == 0
        assert hit.cost_saved_usd == source.cost_usd > 0
        assert hit.attempt_count == 0
        assert hit.budget_holds is None
    assert attempts_of(engine, [h.id for h in hits]) == 0  # no provider attempt is pretended
    assert attempts_of(engine, [r.id for r in ran]) == 20

    # Each prompt's first occurrence ran; its four repeats waited for it and reused it.
    first: dict[str, list[str]] = defaultdict(list)
    for i, j in enumerate(jobs):
        first[prompts[i % 20]].append(j.cache)
    assert all(c.count("exact:miss") == 1 for c in first.values())

    # What the batch paid is what the 20 calls cost; what it saved is what 80 more would have.
    paid = sum((r.cost_usd for r in ran), Decimal(0))
    saved = sum((h.cost_saved_usd for h in hits), Decimal(0))
    assert Decimal(batch["cost_usd"]) == paid
    usage = batch["usage"]
    assert usage["input_tokens"] == sum(r.input_tokens for r in ran)  # billed tokens only

    # The budget paid for the 20 calls; the hits reserved nothing and spent nothing.
    (held,) = tenant.get("/v1/budgets").json()["data"]
    assert (Decimal(held["spent_usd"]), held["reserved_usd"]) == (paid, "0")

    stats = tenant.get("/v1/stats", params={"period": "1h"}).json()
    cache = stats["overall"]["cache"]
    assert (cache["hits"], cache["misses"], cache["hit_rate"]) == (80, 20, 0.8)
    assert Decimal(cache["cost_saved_usd"]) == saved
    assert cache["by_mode"]["exact"]["hits"] == 80
    assert Decimal(stats["overall"]["cost_usd"]) == paid
    by_model = tenant.get("/v1/stats", params={"period": "1h", "group_by": "model"}).json()
    (group,) = by_model["data"]
    assert group["key"] == "sim-gpt-mini"
    assert group["cache"]["hits"] == 80

    # The results file answers every line, each repeat with its first occurrence's answer.
    results = tenant.get(f"/v1/batches/{batch['id']}/results", params={"limit": 1000}).json()
    texts = {
        r["custom_id"]: r["response"]["body"]["choices"][0]["message"]["content"]
        for r in results["data"]
    }
    assert len(texts) == 100
    for i in range(20, 100):
        assert texts[f"q-{i:03d}"] == texts[f"q-{i % 20:03d}"]


def test_a_second_batch_of_the_same_prompts_is_answered_at_submission(
    new_tenant: Callable[[], httpx.Client], engine: Engine, simulator: Simulator
) -> None:
    tenant = new_tenant()
    lines = [line(f"a-{i}", f"Name a colour, take {i % 3}.") for i in range(6)]
    first = wait_for_batch(
        tenant, tenant.post("/v1/batches", json={"requests": lines}).json()["id"]
    )
    assert first["status"] == "completed"
    assert calls(simulator) == 3

    again = tenant.post("/v1/batches", json={"requests": lines})
    assert again.status_code == 200, again.text
    batch = again.json()
    # Every line was served from the cache as it was inserted: the batch is done already.
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 6, "completed": 6, "failed": 0}
    assert calls(simulator) == 3
    assert {j.cache for j in batch_jobs(engine, batch["id"])} == {"exact:hit"}
