"""The semantic cache end to end, on pgvector and on the in-process index.

The simulator's vectors are random per text (seeded by its CRC-32): two different texts are
as unrelated as two random vectors, however alike they read — at 768 dimensions their cosine
is within a few hundredths of 0. So a paraphrase the simulator "understands" is one that
normalises to the same text (case, width, spacing: similarity 1), and the threshold is tried
on a pair whose similarity the test computes from the simulator's own vectors; the tests'
gateway embeds at 16 dimensions (tests/conftest.py), where that similarity is a usable 0.6.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import numpy as np
import pytest
from sqlalchemy import Engine, text

from app.cache.directives import normalise
from app.cli.stack import Stack
from app.simulator.tokens import embedding
from tests.cache.conftest import batch_jobs, chat, job, line, model_calls, wait_for_batch
from tests.conftest import CACHE_TEST_ENV, Simulator

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]

Tenants = Callable[[], httpx.Client]
DIMENSIONS = int(CACHE_TEST_ENV["SWITCHBOARD_CACHE_EMBEDDING_DIMENSIONS"])
QUESTION = "What is the capital of France?"
REWORDED = "  what is the CAPITAL of   france?"  # the same question, as the lookup embeds it
NEAR = "Please tell me the French capital"  # 0.60 similar to QUESTION in the simulator's vectors
UNRELATED = "How do I reset my password?"


def similarity(a: str, b: str) -> float:
    """Cosine of two prompts' vectors as the gateway embeds them on the simulator."""
    va, vb = (np.asarray(embedding(normalise(t), DIMENSIONS)) for t in (a, b))
    return float(va @ vb / np.linalg.norm(va) / np.linalg.norm(vb))


@pytest.fixture(scope="module", params=["pgvector", "in_process"])
def index(request: pytest.FixtureRequest, workers: Stack) -> Iterator[str]:
    """The workers embedding prompts (sim-openai's) search with this index."""
    if request.param == "in_process":
        workers.options.extra_env["SWITCHBOARD_CACHE_SEMANTIC_INDEX"] = "in_process"
        workers.restart_workers("sim-openai")
    try:
        yield request.param
    finally:
        if workers.options.extra_env.pop("SWITCHBOARD_CACHE_SEMANTIC_INDEX", None):
            workers.restart_workers("sim-openai")


def semantic(prompt: str, **cache: object) -> dict[str, object]:
    return chat(prompt, cache={"mode": "semantic", **cache})


def ask(client: httpx.Client, body: dict[str, object]) -> httpx.Response:
    answer = client.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    return answer


def lookups(engine: Engine, tenant_id: str) -> list[object]:
    """The tenant's embedding jobs that embedded prompts for the semantic lookup."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT j.id, j.status, j.cost_usd, j.served_model, j.project, "
                    "(SELECT count(*) FROM attempts a WHERE a.job_id = j.id) AS attempts "
                    "FROM jobs j WHERE j.tenant_id = :t AND j.kind = 'embedding' "
                    "AND j.metadata->>'switchboard_cache' = 'semantic_lookup' ORDER BY j.id"
                ),
                {"t": tenant_id},
            )
        )


def test_a_reworded_question_gets_the_first_answer_and_another_question_runs(
    index: str, new_tenant: Tenants, engine: Engine, simulator: Simulator
) -> None:
    tenant = new_tenant()
    first = ask(tenant, semantic(QUESTION))
    reworded = ask(tenant, semantic(REWORDED))
    other = ask(tenant, semantic(UNRELATED))
    assert similarity(QUESTION, UNRELATED) < 0.95 <= similarity(QUESTION, REWORDED)

    assert first.headers["x-switchboard-cache"] == "semantic:miss"
    assert reworded.headers["x-switchboard-cache"] == "semantic:hit"
    assert other.headers["x-switchboard-cache"] == "semantic:miss"
    assert reworded.json()["choices"] == first.json()["choices"]
    assert reworded.headers["x-switchboard-cost-usd"] == "0"
    hit = job(engine, reworded.headers["x-switchboard-job-id"])
    assert hit.cache_source_job_id == first.headers["x-switchboard-job-id"]
    assert hit.cache_similarity == pytest.approx(1.0, abs=1e-5)
    assert hit.cost_saved_usd == Decimal(first.headers["x-switchboard-cost-usd"]) > 0
    assert model_calls(simulator, "sim-gpt-mini") == 2

    # Each prompt was embedded by an embedding job of the tenant's own, billed and recorded.
    embedded = lookups(engine, tenant.tenant_id)  # type: ignore[attr-defined]
    assert len(embedded) == 3 == model_calls(simulator, "sim-embed-small")
    for lookup in embedded:
        assert (lookup.status, lookup.served_model, lookup.attempts) == (
            "succeeded",
            "sim-embed-small",
            1,
        )
        assert lookup.cost_usd > 0
    shown = tenant.get(f"/v1/jobs/{reworded.headers['x-switchboard-job-id']}").json()["cache"]
    assert (shown["mode"], shown["hit"]) == ("semantic", True)


def test_the_threshold_decides_between_a_hit_and_a_miss(
    index: str, new_tenant: Tenants, simulator: Simulator
) -> None:
    near = similarity(QUESTION, NEAR)
    assert 0.3 < near < 0.9  # measurably similar, not the same
    above, below = new_tenant(), new_tenant()
    for tenant in (above, below):
        ask(tenant, semantic(QUESTION))
    hit = ask(above, semantic(NEAR, threshold=round(near - 0.05, 3)))
    miss = ask(below, semantic(NEAR, threshold=round(near + 0.05, 3)))
    assert hit.headers["x-switchboard-cache"] == "semantic:hit"
    assert miss.headers["x-switchboard-cache"] == "semantic:miss"
    assert model_calls(simulator, "sim-gpt-mini") == 3


def test_only_the_same_model_parameters_and_earlier_messages_are_compared(
    index: str, new_tenant: Tenants, simulator: Simulator
) -> None:
    tenant = new_tenant()
    ask(tenant, semantic(QUESTION))
    system = {"role": "system", "content": "Answer in French."}
    briefer = {**semantic(REWORDED), "max_tokens": 10}
    other_system = {**semantic(REWORDED)}
    other_system["messages"] = [system, *other_system["messages"]]  # type: ignore[list-item]
    for body in (briefer, other_system):
        assert ask(tenant, body).headers["x-switchboard-cache"] == "semantic:miss"
    assert model_calls(simulator, "sim-gpt-mini") == 3


def test_paraphrases_in_one_batch_wait_for_the_first_of_them(
    index: str, new_tenant: Tenants, engine: Engine, simulator: Simulator
) -> None:
    tenant = new_tenant()
    prompts = [QUESTION, UNRELATED, REWORDED, QUESTION.upper(), UNRELATED.lower()]
    lines = [line(f"s-{i}", p, cache={"mode": "semantic"}) for i, p in enumerate(prompts)]
    batch = wait_for_batch(
        tenant, tenant.post("/v1/batches", json={"requests": lines}).json()["id"]
    )
    assert batch["request_counts"] == {"total": 5, "completed": 5, "failed": 0}
    caches = [j.cache for j in batch_jobs(engine, batch["id"])]
    assert caches == [
        "semantic:miss",
        "semantic:miss",
        "semantic:hit",
        "semantic:hit",
        "semantic:hit",
    ]
    assert model_calls(simulator, "sim-gpt-mini") == 2
    assert model_calls(simulator, "sim-embed-small") == 1  # the batch's prompts in one call
    jobs = batch_jobs(engine, batch["id"])
    assert jobs[2].cache_source_job_id == jobs[3].cache_source_job_id == jobs[0].id
    assert jobs[4].cache_source_job_id == jobs[1].id
    stats = tenant.get("/v1/stats").json()["overall"]["cache"]["by_mode"]["semantic"]
    assert (stats["hits"], stats["misses"]) == (3, 2)
