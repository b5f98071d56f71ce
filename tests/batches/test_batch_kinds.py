"""Batches to ``/v1/embeddings`` and ``/v1/completions`` with the official SDK, end to end: each
line checked as its endpoint checks it, routed, budgeted and run as that endpoint's jobs, and
answered in that endpoint's shape; real workers, simulator and ledger."""

from __future__ import annotations

import base64
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import orjson
import pytest
from openai.types import Completion, CreateEmbeddingResponse
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from app.cli.main import cli
from app.client import SwitchboardAPIError
from app.simulator.tokens import embedding, text_tokens
from tests.batches.conftest import Tenant, jsonl
from tests.batches.conftest import request as chat_line
from tests.conftest import count_rows

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]

EMBEDDINGS, COMPLETIONS = "/v1/embeddings", "/v1/completions"
SMALL, LARGE = "sim-embed-small", "sim-embed-large"
PRICES = {SMALL: Decimal("0.02"), LARGE: Decimal("0.13")}  # per million input tokens
MILLION = Decimal(1_000_000)
runner = CliRunner(env={"COLUMNS": "200"})
# An embedding model no worker pool of the test stack serves: its jobs stay queued.
IDLE_EMBEDDER = "sim-gemini-embed"


def texts(n: int) -> list[str]:
    marker = uuid.uuid4().hex[:8]
    return [f"passage {i} on rate limits ({marker})" for i in range(n)]


def embedding_line(
    custom_id: str, model: Any, inputs: str | list[str], **body: Any
) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": EMBEDDINGS,
        "body": {"model": model, "input": inputs, **body},
    }


def completion_line(custom_id: str, model: str, prompt: str, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": COMPLETIONS,
        "body": {"model": model, "prompt": prompt, **body},
    }


def simulated(text_: str, dimensions: int = 768) -> np.ndarray:
    """The simulator's vector for ``text_``, as the gateway keeps it (float32)."""
    return np.asarray(embedding(text_, dimensions), dtype=np.float32)


def vectors_of(body: dict[str, Any]) -> list[np.ndarray]:
    """An embeddings body's vectors in index order, floats or base64 float32."""
    items = sorted(body["data"], key=lambda item: item["index"])
    return [
        np.frombuffer(base64.b64decode(e), "<f4")
        if isinstance(e := item["embedding"], str)
        else np.asarray(e, dtype=np.float32)
        for item in items
    ]


def jobs_of(engine: Engine, batch_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT custom_id, id, kind, status, served_model, models, input_tokens, "
                "output_tokens, cost_usd, result, request FROM jobs WHERE batch_id = :b"
            ),
            {"b": batch_id},
        ).all()
    return {r.custom_id: r for r in rows}


def results(http: httpx.Client, batch_id: str) -> dict[str, dict[str, Any]]:
    """``GET /v1/batches/{id}/results`` as JSON pages, joined on custom_id."""
    found: dict[str, dict[str, Any]] = {}
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"after": after} if after else {})
        page = http.get(f"/v1/batches/{batch_id}/results", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        found.update({line["custom_id"]: line for line in body["data"]})
        if not body["has_more"]:
            return found
        after = body["last_id"]


def results_jsonl(http: httpx.Client, batch_id: str) -> dict[str, dict[str, Any]]:
    response = http.get(f"/v1/batches/{batch_id}/results", params={"format": "jsonl"})
    assert response.status_code == 200, response.text
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    return {line["custom_id"]: line for line in lines}


def test_an_embeddings_file_batch_answers_what_post_embeddings_answers(
    tenant: Tenant, engine: Engine
) -> None:
    asked: dict[str, tuple[str, list[str], dict[str, Any]]] = {
        "many": (SMALL, texts(3), {}),
        "one": (SMALL, texts(1), {}),
        "short": (SMALL, texts(2), {"dimensions": 64}),
        "packed": (SMALL, texts(2), {"encoding_format": "base64"}),
        "large": (LARGE, texts(2), {}),
    }
    lines = [
        embedding_line(cid, model, inputs[0] if cid == "one" else inputs, **extra)
        for cid, (model, inputs, extra) in asked.items()
    ]
    line_of = {line["custom_id"]: line for line in lines}
    created = tenant.run(lines, endpoint=EMBEDDINGS, metadata={"run": "vectors"})
    assert (created.endpoint, created.status) == (EMBEDDINGS, "in_progress")

    batch = tenant.wait(created.id)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 5, "completed": 5, "failed": 0}
    assert batch.error_file_id is None
    output = tenant.lines_of(batch.output_file_id)
    assert set(output) == set(asked)

    jobs = jobs_of(engine, batch.id)
    total_tokens, total_cost = 0, Decimal(0)
    for cid, (model, inputs, extra) in asked.items():
        line = output[cid]
        assert (line["error"], line["response"]["status_code"]) == (None, 200)
        body = line["response"]["body"]
        assert (body["object"], body["model"]) == ("list", model)
        assert [item["index"] for item in body["data"]] == list(range(len(inputs)))
        if cid != "packed":  # the SDK's type holds floats (it decodes base64 before parsing)
            CreateEmbeddingResponse.model_validate(body)
        # The same vectors, byte for byte, as the interactive endpoint answers the same body.
        direct = tenant.http.post(EMBEDDINGS, json={**line_of[cid]["body"], "input": inputs})
        assert direct.status_code == 200, direct.text
        from_direct = vectors_of(direct.json())
        dims = extra.get("dimensions", 3072 if model == LARGE else 768)
        for got, same, text_ in zip(vectors_of(body), from_direct, inputs, strict=True):
            assert got.shape == (dims,)
            assert np.array_equal(got, same)
            assert np.array_equal(got, simulated(text_, dims))
        first = body["data"][0]["embedding"]
        assert isinstance(first, str) if cid == "packed" else isinstance(first[0], float)
        # The ledger: the inputs' tokens at the model's input price, nothing for output.
        tokens = sum(text_tokens(t) for t in inputs)
        cost = tokens * PRICES[model] / MILLION
        assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
        job = jobs[cid]
        assert (job.kind, job.status, job.served_model) == ("embedding", "succeeded", model)
        assert (job.input_tokens, job.output_tokens, job.cost_usd) == (tokens, 0, cost)
        assert Decimal(line["cost_usd"]) == cost
        total_tokens += tokens
        total_cost += cost

    assert batch.usage is not None
    assert (batch.usage.input_tokens, batch.usage.output_tokens) == (total_tokens, 0)
    shown = tenant.http.get(f"/v1/batches/{batch.id}").json()
    assert Decimal(shown["cost_usd"]) == total_cost
    usage = tenant.http.get("/v1/usage", params={"batch_id": batch.id}).json()
    assert Decimal(usage["total_cost_usd"]) == total_cost
    assert {u["model"]: u["output_tokens"] for u in usage["data"]} == {SMALL: 0, LARGE: 0}

    # The inline results endpoint gives the same lines, paged or as JSONL.
    assert results(tenant.http, batch.id) == output
    assert results_jsonl(tenant.http, batch.id) == output
    file = tenant.sdk.files.retrieve(batch.output_file_id or "")
    assert file.bytes == len(tenant.sdk.files.content(file.id).content)


def test_an_embeddings_line_that_fails_is_in_the_error_file_as_the_endpoint_answers_it(
    tenant: Tenant,
) -> None:
    too_long = "x" * 40_000  # past the model's 8,191-token window
    lines = [embedding_line("ok", SMALL, texts(1)), embedding_line("long", SMALL, too_long)]
    batch = tenant.wait(tenant.run(lines, endpoint=EMBEDDINGS).id)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 2, "completed": 1, "failed": 1}
    assert set(tenant.lines_of(batch.output_file_id)) == {"ok"}
    failed = tenant.lines_of(batch.error_file_id)["long"]
    direct = tenant.http.post(EMBEDDINGS, json=lines[1]["body"])
    assert failed["error"] is None  # an HTTP failure: it is in the response
    assert failed["response"]["status_code"] == direct.status_code == 400
    error, same = failed["response"]["body"]["error"], direct.json()["error"]
    assert (error["code"], error["type"]) == (same["code"], same["type"])
    assert error["code"] == "context_length_exceeded"


def test_an_inline_embeddings_batch_of_lines_and_flat_requests(
    tenant: Tenant, engine: Engine
) -> None:
    embedders = tenant.http.get("/v1/models", params={"capability": "embeddings"}).json()["data"]
    capable = {m["id"] for m in embedders}
    # The strategy may pick any embedding model a worker of the test stack serves.
    unserved = sorted(m["id"] for m in embedders if m["provider"] != "sim-openai")
    routed = {"route": {"exclude_models": unserved}}
    flat, line = texts(2), texts(1)
    response = tenant.http.post(
        "/v1/batches",
        json={
            "endpoint": EMBEDDINGS,
            "requests": [
                {"custom_id": "flat", "model": LARGE, "input": flat, "dimensions": 256},
                embedding_line("line", SMALL, line, encoding_format="base64"),
                embedding_line("routed", "strategy:cost", texts(2), **routed),
            ],
        },
    )
    assert response.status_code == 200, response.text
    created = response.json()
    assert (created["endpoint"], created["status"], created["priority"]) == (
        EMBEDDINGS,
        "in_progress",
        "low",
    )
    jobs = jobs_of(engine, created["id"])
    assert {cid: job.kind for cid, job in jobs.items()} == dict.fromkeys(
        ("flat", "line", "routed"), "embedding"
    )
    assert set(jobs["routed"].models) <= capable  # the strategy chose among embedding models

    batch = tenant.wait(created["id"])
    assert batch.status == "completed"
    found = results(tenant.http, batch.id)
    assert set(found) == {"flat", "line", "routed"}
    assert results_jsonl(tenant.http, batch.id) == found
    bodies = {cid: r["response"]["body"] for cid, r in found.items()}
    assert [v.tobytes() for v in vectors_of(bodies["flat"])] == [
        simulated(t, 256).tobytes() for t in flat
    ]
    assert isinstance(bodies["line"]["data"][0]["embedding"], str)
    assert np.array_equal(vectors_of(bodies["line"])[0], simulated(line[0]))
    assert bodies["routed"]["model"] in capable
    assert len(vectors_of(bodies["routed"])) == 2


def test_an_inline_jsonl_embeddings_batch_names_its_endpoint_in_the_query(
    tenant: Tenant, engine: Engine
) -> None:
    inputs = texts(2)
    response = tenant.http.post(
        "/v1/batches",
        content=jsonl([embedding_line(f"j{i}", SMALL, [t]) for i, t in enumerate(inputs)]),
        params={"endpoint": EMBEDDINGS, "priority": "high"},
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    batch = tenant.wait(response.json()["id"])
    assert (batch.status, batch.endpoint) == ("completed", EMBEDDINGS)
    output = tenant.lines_of(batch.output_file_id)
    for i, t in enumerate(inputs):
        assert np.array_equal(vectors_of(output[f"j{i}"]["response"]["body"])[0], simulated(t))
    assert {job.kind for job in jobs_of(engine, batch.id).values()} == {"embedding"}


def test_a_completions_batch_answers_text_completions(tenant: Tenant, engine: Engine) -> None:
    prompts = {f"p{i}": f"Once upon a time ({uuid.uuid4().hex[:8]}) {i}" for i in range(4)}
    lines = [
        completion_line(cid, "sim-gpt-mini" if i % 2 else "sim-claude-haiku", prompt)
        for i, (cid, prompt) in enumerate(prompts.items())
    ]
    lines.append(completion_line("short", "sim-gpt-mini", "Tell me more", max_tokens=5))
    batch = tenant.wait(tenant.run(lines, endpoint=COMPLETIONS).id)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 5, "completed": 5, "failed": 0}

    output = tenant.lines_of(batch.output_file_id)
    jobs = jobs_of(engine, batch.id)
    for cid, line in output.items():
        job = jobs[cid]
        answer = Completion.model_validate(line["response"]["body"])  # OpenAI's own type
        assert answer.object == "text_completion"
        assert answer.id == f"cmpl-{job.id}" == f"cmpl-{line['id']}"
        assert answer.model == job.served_model
        (choice,) = answer.choices
        assert choice.text == job.result["text"]
        assert choice.finish_reason in ("stop", "length")
        assert answer.usage is not None
        assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (
            job.input_tokens,
            job.output_tokens,
        )
        assert job.kind == "chat"  # a completion is a chat job underneath
        assert Decimal(line["cost_usd"]) == job.cost_usd > 0
    for cid, prompt in prompts.items():
        assert jobs[cid].request["messages"] == [{"role": "user", "content": prompt}]
        assert jobs[cid].request["max_tokens"] == 16  # the endpoint's own default
        assert output[cid]["response"]["body"]["usage"]["completion_tokens"] <= 16
    assert jobs["short"].request["max_tokens"] == 5
    assert output["short"]["response"]["body"]["usage"]["completion_tokens"] <= 5
    assert results(tenant.http, batch.id) == output


def test_lines_naming_a_model_of_the_other_kind_fail_the_batch_by_line(
    tenant: Tenant, engine: Engine
) -> None:
    good = embedding_line("ok", SMALL, texts(1))
    chat_body = chat_line("x", "sim-gpt-mini")["body"]
    lines = [
        good,
        embedding_line("chat-model", "sim-gpt-mini", texts(1)),
        embedding_line("unknown", "text-embedding-nope", texts(1)),
        embedding_line("mixed", [SMALL, "sim-claude-haiku"], texts(1)),
        chat_line("chat-url", "sim-gpt-mini"),
        {**good, "custom_id": "chat-body", "body": chat_body},
    ]
    batch = tenant.run(lines, endpoint=EMBEDDINGS)
    assert batch.status == "failed"
    assert batch.errors is not None
    got = [(e.code, e.line, e.param) for e in batch.errors.data or []]
    assert got == [
        ("unsupported_model", 2, "body.model"),
        ("unknown_model", 3, "body.model"),
        ("unsupported_model", 4, "body.model[1]"),
        ("endpoint_mismatch", 5, "url"),
        ("invalid_request", 6, "body.input"),
    ]
    for error in batch.errors.data or []:
        assert (error.message or "").startswith(f"line {error.line}: ")
    assert "does not serve embeddings" in (batch.errors.data or [])[0].message  # type: ignore[operator]

    # And the other way round: an embedding model in a chat or a completions batch.
    chat = tenant.run([chat_line("a", "sim-gpt-mini"), chat_line("b", SMALL)])
    assert chat.status == "failed"
    assert [(e.code, e.line, e.param) for e in chat.errors.data or []] == [  # type: ignore[union-attr]
        ("unsupported_model", 2, "body.model")
    ]
    legacy = tenant.run([completion_line("a", LARGE, "hi")], endpoint=COMPLETIONS)
    assert legacy.status == "failed"
    assert [(e.code, e.line, e.param) for e in legacy.errors.data or []] == [  # type: ignore[union-attr]
        ("unsupported_model", 1, "body.model")
    ]
    for failed in (batch, chat, legacy):
        assert jobs_of(engine, failed.id) == {}  # nothing was queued


def test_inline_mistakes_are_a_400_naming_the_request_and_write_nothing(
    tenant: Tenant, engine: Engine
) -> None:
    before = count_rows(engine, "jobs"), count_rows(engine, "batches")
    cases = [
        (
            [embedding_line("a", SMALL, "x"), embedding_line("b", "sim-gpt-mini", "y")],
            "unsupported_model",
            "requests[1].body.model",
        ),
        (
            [{"custom_id": "flat", "model": "sim-gpt-mini", "input": "y"}],
            "unsupported_model",
            "requests[0].model",
        ),
        (
            [
                {
                    "custom_id": "chatty",
                    "model": SMALL,
                    "messages": [{"role": "user", "content": "hi"}],
                }
            ],
            "invalid_request",
            "requests[0].input",
        ),
        ([chat_line("c", "sim-gpt-mini")], "endpoint_mismatch", "requests[0].url"),
    ]
    for requests, code, param in cases:
        response = tenant.http.post(
            "/v1/batches", json={"endpoint": EMBEDDINGS, "requests": requests}
        )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["code"], error["param"], error["type"]) == (
            code,
            param,
            "invalid_request_error",
        )
    jsonl_body = jsonl([embedding_line("a", SMALL, "x"), embedding_line("b", "sim-gpt-mini", "y")])
    response = tenant.http.post(
        "/v1/batches",
        content=jsonl_body,
        params={"endpoint": EMBEDDINGS},
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["line"], error["param"]) == ("unsupported_model", 2, "body.model")
    assert error["message"].startswith("line 2: ")
    assert (count_rows(engine, "jobs"), count_rows(engine, "batches")) == before


def test_an_embeddings_batch_holds_at_most_50000_inputs(tenant: Tenant, engine: Engine) -> None:
    # 25 requests of OpenAI's 2,048 inputs each: far under 50,000 requests, over 50,000 inputs.
    lines = [
        embedding_line(f"r{i}", IDLE_EMBEDDER, [f"t{i}.{j}" for j in range(2048)])
        for i in range(25)
    ]
    before = count_rows(engine, "jobs"), count_rows(engine, "batches")
    inline = tenant.http.post("/v1/batches", json={"endpoint": EMBEDDINGS, "requests": lines})
    assert inline.status_code == 413, inline.text
    error = inline.json()["error"]
    assert error["code"] == "batch_too_large"
    assert "50,000 inputs" in error["message"]
    assert "51,200" in error["message"]
    with pytest.raises(openai.APIStatusError) as raised:
        tenant.run(lines, endpoint=EMBEDDINGS)
    assert (raised.value.status_code, raised.value.code) == (413, "batch_too_large")
    assert (count_rows(engine, "jobs"), count_rows(engine, "batches")) == before

    fits = tenant.run(lines[:24], endpoint=EMBEDDINGS)  # 49,152 inputs
    assert fits.status == "in_progress"
    assert tenant.sdk.batches.cancel(fits.id).status == "cancelled"


def test_a_budget_holds_an_embeddings_batch_at_its_input_tokens(
    tenant: Tenant, api: httpx.Client
) -> None:
    inputs = [texts(3), texts(2)]

    def worst(model: str) -> Decimal:
        # ceil(bytes / 3) tokens per input and no output (the simulator counts bytes / 4).
        upper = sum(-(-len(t.encode()) // 3) for chunk in inputs for t in chunk)
        return upper * prices[model] / MILLION

    prices = {**PRICES, IDLE_EMBEDDER: Decimal("0.15")}
    idle = [embedding_line(f"b{i}", IDLE_EMBEDDER, chunk) for i, chunk in enumerate(inputs)]
    limit = worst(IDLE_EMBEDDER) - Decimal("1e-9")
    budget = api.post(
        "/v1/budgets", json={"tenant_id": tenant.id, "period": "day", "limit_usd": str(limit)}
    )
    assert budget.status_code == 201, budget.text
    budget_id = budget.json()["id"]
    with pytest.raises(openai.APIStatusError) as raised:
        tenant.run(idle, endpoint=EMBEDDINGS)
    assert (raised.value.status_code, raised.value.code) == (402, "budget_exceeded")

    limit = worst(IDLE_EMBEDDER)
    assert api.patch(f"/v1/budgets/{budget_id}", json={"limit_usd": str(limit)}).is_success
    queued = tenant.run(idle, endpoint=EMBEDDINGS)  # no worker serves it: it stays queued
    held = api.get(f"/v1/budgets/{budget_id}").json()
    assert (Decimal(held["reserved_usd"]), Decimal(held["spent_usd"])) == (limit, 0)
    tenant.sdk.batches.cancel(queued.id)
    released = api.get(f"/v1/budgets/{budget_id}").json()
    assert Decimal(released["reserved_usd"]) == 0

    served = [embedding_line(f"b{i}", LARGE, chunk) for i, chunk in enumerate(inputs)]
    batch = tenant.wait(tenant.run(served, endpoint=EMBEDDINGS).id)
    assert batch.status == "completed"
    cost = sum(text_tokens(t) for chunk in inputs for t in chunk) * PRICES[LARGE] / MILLION
    settled = api.get(f"/v1/budgets/{budget_id}").json()
    assert (Decimal(settled["spent_usd"]), Decimal(settled["reserved_usd"])) == (cost, 0)
    assert Decimal(tenant.http.get(f"/v1/batches/{batch.id}").json()["cost_usd"]) == cost


def test_the_cli_submits_an_embeddings_file_at_the_endpoint_its_lines_name(
    api_url: str, tmp_path: Path
) -> None:
    inputs = texts(2)
    path = tmp_path / "vectors.jsonl"
    path.write_bytes(jsonl([embedding_line(f"c{i}", SMALL, [t]) for i, t in enumerate(inputs)]))
    submitted = runner.invoke(cli, ["submit", str(path), "--wait", "--api", api_url])
    assert submitted.exit_code == 0, submitted.output
    batch_id = next(w for w in submitted.output.split() if w.startswith("batch_")).rstrip(":")
    out = tmp_path / "results.jsonl"
    written = runner.invoke(cli, ["results", batch_id, "-o", str(out), "--api", api_url])
    assert written.exit_code == 0, written.output
    lines = {line["custom_id"]: line for line in map(orjson.loads, out.read_bytes().splitlines())}
    for i, t in enumerate(inputs):
        assert np.array_equal(vectors_of(lines[f"c{i}"]["response"]["body"])[0], simulated(t))

    explicit = runner.invoke(
        cli, ["submit", str(path), "--endpoint", COMPLETIONS, "--api", api_url]
    )
    assert isinstance(explicit.exception, SwitchboardAPIError)
    assert explicit.exception.code == "endpoint_mismatch"  # an explicit endpoint wins
