"""``POST /v1/embeddings``: embedding jobs through real workers, the simulator and the ledger."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from sqlalchemy import Engine, text

from app.cli.stack import Stack
from app.client import Switchboard, SwitchboardAPIError
from app.simulator.config import ErrorRates, default_config
from app.simulator.control import with_provider
from app.simulator.tokens import embedding, text_tokens
from tests.conftest import Simulator

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]

SMALL, LARGE, GEMINI = "sim-embed-small", "sim-embed-large", "sim-gemini-embed"
MILLION = Decimal(1_000_000)


@pytest.fixture(scope="module")
def gemini_pool(workers: Stack) -> Iterator[None]:
    """A worker pool for ``sim-gemini`` for this module only: the shared fixture starts
    OpenAI's and Anthropic's, and other tests rely on nothing serving ``sim-gemini``."""
    assert "sim-gemini" not in workers.workers
    workers.start_workers("sim-gemini", processes=1, concurrency=2)
    try:
        workers.wait_for_workers()
        yield
    finally:
        for child in workers.workers.pop("sim-gemini", []):
            child.stop()


@pytest.fixture
def sdk(api_url: str, new_tenant: Callable[[], httpx.Client]) -> Iterator[openai.OpenAI]:
    """OpenAI's SDK on the gateway with a tenant's own key."""
    tenant = new_tenant()
    key = tenant.headers["authorization"].removeprefix("Bearer ")
    client = openai.OpenAI(base_url=api_url + "/v1", api_key=key, max_retries=0)
    client.tenant = tenant  # type: ignore[attr-defined]
    yield client
    client.close()


def texts(n: int) -> list[str]:
    marker = uuid.uuid4().hex[:8]
    return [f"document {i} about gateways ({marker})" for i in range(n)]


def expected(text_: str, dimensions: int = 768) -> np.ndarray:
    """The simulator's vector for ``text_``, as the gateway keeps it (float32)."""
    return np.asarray(embedding(text_, dimensions), dtype=np.float32)


def gemini_calls(simulator: Simulator) -> int:
    return int(simulator.stats()["providers"].get("sim-gemini", {}).get("requests", 0))


def job_row(engine: Engine, job_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT kind, status, served_model, input_tokens, output_tokens, cost_usd "
                "FROM jobs WHERE id = :id"
            ),
            {"id": job_id},
        ).one()


def attempts(engine: Engine, job_id: str) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT model_id, status, error_class, decision, input_tokens, "
                    "output_tokens, cost_usd FROM attempts WHERE job_id = :id ORDER BY number"
                ),
                {"id": job_id},
            )
        )


def test_the_sdk_decodes_base64_vectors_that_are_the_providers_own(sdk: openai.OpenAI) -> None:
    inputs = texts(3)
    raw = sdk.embeddings.with_raw_response.create(model=SMALL, input=inputs)
    answer = raw.parse()  # the SDK asked for base64 and decoded it
    assert [item.index for item in answer.data] == [0, 1, 2]
    for item, text_ in zip(answer.data, inputs, strict=True):
        assert np.array_equal(np.asarray(item.embedding, dtype=np.float32), expected(text_))
    assert answer.model == SMALL
    tokens = sum(text_tokens(t) for t in inputs)
    assert (answer.usage.prompt_tokens, answer.usage.total_tokens) == (tokens, tokens)
    assert raw.headers["x-switchboard-model"] == SMALL
    assert raw.headers["x-switchboard-provider"] == "sim-openai"
    assert Decimal(raw.headers["x-switchboard-cost-usd"]) == tokens * Decimal("0.02") / MILLION


def test_float_vectors_honour_dimensions_and_match_base64(sdk: openai.OpenAI) -> None:
    inputs = texts(2)
    floats = sdk.embeddings.create(
        model=SMALL, input=inputs, dimensions=256, encoding_format="float"
    )
    packed = sdk.embeddings.create(model=SMALL, input=inputs, dimensions=256)
    for a, b, text_ in zip(floats.data, packed.data, inputs, strict=True):
        assert len(a.embedding) == 256
        assert np.array_equal(np.asarray(a.embedding, dtype=np.float32), expected(text_, 256))
        assert np.array_equal(  # the same float32 values, printed or packed
            np.asarray(a.embedding, dtype=np.float32), np.asarray(b.embedding, dtype=np.float32)
        )


def test_a_single_string_input_is_one_vector(api: httpx.Client) -> None:
    (one,) = texts(1)
    response = api.post("/v1/embeddings", json={"model": SMALL, "input": one})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    (item,) = body["data"]
    assert (item["object"], item["index"]) == ("embedding", 0)
    assert np.array_equal(np.asarray(item["embedding"], dtype=np.float32), expected(one))


def test_the_ledger_records_input_tokens_at_the_input_price(
    sdk: openai.OpenAI, engine: Engine
) -> None:
    inputs = texts(4)
    raw = sdk.embeddings.with_raw_response.create(model=LARGE, input=inputs)
    job_id = raw.headers["x-switchboard-job-id"]
    tokens = sum(text_tokens(t) for t in inputs)
    cost = tokens * Decimal("0.13") / MILLION
    row = job_row(engine, job_id)
    assert (row.kind, row.status, row.served_model) == ("embedding", "succeeded", LARGE)
    assert (row.input_tokens, row.output_tokens, row.cost_usd) == (tokens, 0, cost)
    assert [tuple(a) for a in attempts(engine, job_id)] == [
        (LARGE, "succeeded", None, "succeeded", tokens, 0, cost)
    ]


def test_get_job_summarises_the_vectors_and_returns_them_on_request(
    sdk: openai.OpenAI,
) -> None:
    inputs = texts(2)
    raw = sdk.embeddings.with_raw_response.create(model=LARGE, input=inputs)
    job_id = raw.headers["x-switchboard-job-id"]
    tenant: httpx.Client = sdk.tenant  # type: ignore[attr-defined]
    job = tenant.get(f"/v1/jobs/{job_id}").json()
    assert (job["kind"], job["status"], job["result"]) == ("embedding", "succeeded", None)
    assert job["embeddings"] == {"count": 2, "dimensions": 3072, "data": None}
    with_floats = tenant.get(f"/v1/jobs/{job_id}", params={"vectors": "float"}).json()
    rows = [item["embedding"] for item in with_floats["embeddings"]["data"]]
    assert np.array_equal(np.asarray(rows, dtype=np.float32)[1], expected(inputs[1], 3072))
    as_base64 = tenant.get(f"/v1/jobs/{job_id}", params={"vectors": "base64"}).json()
    decoded = np.frombuffer(
        base64.b64decode(as_base64["embeddings"]["data"][0]["embedding"]), "<f4"
    )
    assert np.array_equal(decoded, expected(inputs[0], 3072))


def test_a_failing_embedding_model_falls_back_to_the_next(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    config = default_config()
    served = dict(config.providers["sim-openai"].models)
    served[SMALL] = served[SMALL].model_copy(update={"errors": ErrorRates(server_error=1.0)})
    simulator.configure(with_provider(config, "sim-openai", models=served))
    inputs = texts(2)
    response = api.post("/v1/embeddings", json={"model": [SMALL, LARGE], "input": inputs})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == LARGE
    tried = attempts(engine, response.headers["x-switchboard-job-id"])
    assert [(a.model_id, a.status, a.error_class) for a in tried[:-1]] == [
        (SMALL, "failed", "server_error")
    ] * (len(tried) - 1)
    assert tried[-2].decision == "fallback"
    assert (tried[-1].model_id, tried[-1].status) == (LARGE, "succeeded")
    assert len(response.json()["data"][0]["embedding"]) == 3072


def test_a_chat_model_is_refused_for_embeddings_and_vice_versa(
    sdk: openai.OpenAI, engine: Engine
) -> None:
    before = _job_count(engine)
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.embeddings.create(model="sim-gpt-mini", input="hello")
    assert raised.value.code == "unsupported_model"
    assert "does not serve embeddings" in raised.value.message
    with pytest.raises(openai.BadRequestError) as chat:
        sdk.chat.completions.create(model=SMALL, messages=[{"role": "user", "content": "hi"}])
    assert chat.value.code == "unsupported_model"
    with pytest.raises(openai.BadRequestError) as legacy:
        sdk.completions.create(model=SMALL, prompt="hi")
    assert legacy.value.code == "unsupported_model"
    assert _job_count(engine) == before  # nothing half-recorded


def test_token_arrays_and_empty_inputs_are_clear_400s(api: httpx.Client) -> None:
    for body, param in (
        ({"model": SMALL, "input": [[1, 2, 3]]}, "input"),
        ({"model": SMALL, "input": []}, "input"),
        ({"model": SMALL, "input": ["ok", ""]}, "input[1]"),
        ({"model": SMALL, "input": "x", "encoding_format": "int8"}, "encoding_format"),
    ):
        response = api.post("/v1/embeddings", json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["type"], error["param"]) == ("invalid_request_error", param)
    tokens = api.post("/v1/embeddings", json={"model": SMALL, "input": [[1, 2, 3]]})
    assert "token arrays are not supported" in tokens.json()["error"]["message"]


def test_a_budget_reserves_the_worst_case_and_settles_to_the_cost(
    api: httpx.Client, new_tenant: Callable[[], httpx.Client], engine: Engine
) -> None:
    tenant = new_tenant()
    tenant_id = tenant.tenant_id  # type: ignore[attr-defined]
    inputs = texts(3)
    # The worst case is ceil(bytes / 3) tokens per input; the simulator counts bytes / 4.
    worst = sum(-(-len(t.encode()) // 3) for t in inputs) * Decimal("0.13") / MILLION
    tight = {"tenant_id": tenant_id, "period": "day", "limit_usd": str(worst / 2)}
    budget = api.post("/v1/budgets", json=tight)
    assert budget.status_code == 201, budget.text
    refused = tenant.post("/v1/embeddings", json={"model": LARGE, "input": inputs})
    assert refused.status_code == 402
    assert refused.json()["error"]["type"] == "insufficient_quota"
    assert refused.json()["error"]["code"] == "budget_exceeded"

    budget_id = budget.json()["id"]
    assert api.patch(f"/v1/budgets/{budget_id}", json={"limit_usd": str(worst)}).is_success
    served = tenant.post("/v1/embeddings", json={"model": LARGE, "input": inputs})
    assert served.status_code == 200, served.text
    cost = Decimal(served.headers["x-switchboard-cost-usd"])
    assert cost == sum(text_tokens(t) for t in inputs) * Decimal("0.13") / MILLION < worst
    state = api.get(f"/v1/budgets/{budget_id}").json()
    assert (Decimal(state["spent_usd"]), Decimal(state["reserved_usd"])) == (cost, 0)


@pytest.mark.usefixtures("gemini_pool")
def test_gemini_inputs_are_split_into_calls_of_at_most_100(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    inputs = texts(250)
    before = gemini_calls(simulator)
    response = api.post(
        "/v1/embeddings", json={"model": GEMINI, "input": inputs, "encoding_format": "base64"}
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [item["index"] for item in data] == list(range(250))
    last = np.frombuffer(base64.b64decode(data[-1]["embedding"]), "<f4")
    assert np.array_equal(last, expected(inputs[-1]))
    assert gemini_calls(simulator) - before == 3
    job_id = response.headers["x-switchboard-job-id"]
    (attempt,) = attempts(engine, job_id)
    # Gemini reports no tokens: billed at 4 bytes per token, as the simulator counts.
    tokens = sum(text_tokens(t) for t in inputs)
    assert (attempt.input_tokens, attempt.cost_usd) == (tokens, tokens * Decimal("0.15") / MILLION)


def test_a_routing_strategy_only_chooses_embedding_models(api: httpx.Client) -> None:
    response = api.post(
        "/v1/embeddings",
        json={"model": "strategy:cost", "input": texts(2)},
        headers={"x-switchboard-wait-s": "0.2"},
    )
    assert response.status_code in (200, 504), response.text
    job_id = response.headers["x-switchboard-job-id"]
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["kind"] == "embedding"
    assert job["routing"]["strategy"] == "cost"
    models = {m["id"]: m for m in api.get("/v1/models").json()["data"]}
    assert all("embeddings" in models[m]["capabilities"] for m in job["model"])
    api.post(f"/v1/jobs/{job_id}/cancel")


def test_the_python_client_embeds_and_raises_the_apis_code(api_url: str, admin_key: str) -> None:
    inputs = texts(2)
    with Switchboard(api_url, api_key=admin_key) as client:
        answer = client.generate_embeddings(inputs, SMALL, dimensions=64)
        assert [len(item["embedding"]) for item in answer["data"]] == [64, 64]
        with pytest.raises(SwitchboardAPIError) as raised:
            client.generate_embeddings(inputs, "sim-claude-haiku")
    assert (raised.value.code, raised.value.status) == ("unsupported_model", 400)


def _job_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM jobs")).scalar_one())
