"""OpenAI's Batch API flow with the official SDK, end to end: upload a file, create a batch,
poll it, read the output and error files; list and validation; real workers and simulator."""

from __future__ import annotations

from collections.abc import Callable

import openai
import orjson
import pytest
from openai.types.chat import ChatCompletion
from sqlalchemy import Engine, text

from app.simulator.config import ErrorRates, default_config
from app.simulator.control import with_provider
from tests.api.test_jobs_api import IDLE_MODEL
from tests.batches.conftest import Tenant, request
from tests.conftest import Simulator

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]

MODELS = ("sim-gpt-mini", "sim-claude-haiku")


def jobs_of(engine: Engine, batch_id: str) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT custom_id, status FROM jobs WHERE batch_id = :b"), {"b": batch_id}
        ).all()
    return {r.custom_id: r.status for r in rows}


def test_the_sdk_runs_a_batch_from_an_uploaded_file(tenant: Tenant) -> None:
    lines = [request(f"q-{i}", MODELS[i % 2], f"Question {i}") for i in range(10)]
    lines.append(request("q-new", "sim-gpt-mini", max_completion_tokens=9, metadata={"k": "v"}))
    input_file_id = tenant.upload(lines)
    created = tenant.sdk.batches.create(
        input_file_id=input_file_id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"run": "nightly"},
    )
    assert created.status in ("validating", "in_progress")
    assert created.input_file_id == input_file_id
    assert created.metadata == {"run": "nightly"}
    assert created.output_file_id is None  # named once the batch has ended

    batch = tenant.wait(created.id)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 11, "completed": 11, "failed": 0}
    assert batch.error_file_id is None  # no failures: no error file
    assert batch.completed_at is not None
    assert batch.in_progress_at is not None
    assert batch.finalizing_at == batch.completed_at
    assert batch.usage is not None
    assert batch.usage.input_tokens > 0
    assert batch.usage.total_tokens == batch.usage.input_tokens + batch.usage.output_tokens

    output = tenant.lines_of(batch.output_file_id)
    assert set(output) == {line["custom_id"] for line in lines}
    for custom_id, line in output.items():
        assert line["error"] is None
        assert line["response"]["status_code"] == 200
        answer = ChatCompletion.model_validate(line["response"]["body"])
        assert answer.choices[0].message.content
        expected = "sim-gpt-mini" if custom_id == "q-new" else MODELS[int(custom_id[2:]) % 2]
        assert answer.model == expected
    assert output["q-new"]["response"]["body"]["usage"]["completion_tokens"] <= 9

    file = tenant.sdk.files.retrieve(batch.output_file_id or "")
    assert file.purpose == "batch_output"
    assert file.filename == f"{batch.id}_output.jsonl"
    assert file.bytes == len(tenant.sdk.files.content(file.id).content)
    assert file.created_at == batch.completed_at
    raw = tenant.http.get(f"/v1/files/{file.id}/content")
    assert raw.headers["content-disposition"] == f'attachment; filename="{batch.id}_output.jsonl"'
    assert raw.content == tenant.http.get(f"/v1/files/{file.id}/content").content  # stable
    listed = tenant.sdk.files.list(purpose="batch_output")
    assert [f.id for f in listed.data] == [file.id]


def test_requests_that_fail_go_to_the_error_file(tenant: Tenant, simulator: Simulator) -> None:
    config = default_config()
    models = dict(config.providers["sim-openai"].models)
    models["sim-gpt-large"] = models["sim-gpt-large"].model_copy(
        update={"errors": ErrorRates(content_filter=1.0)}
    )
    simulator.configure(with_provider(config, "sim-openai", models=models))
    lines = [request(f"ok-{i}", "sim-gpt-mini") for i in range(3)]
    lines += [request(f"bad-{i}", "sim-gpt-large") for i in range(2)]

    batch = tenant.wait(tenant.run(lines).id)
    assert batch.status == "completed"  # completed is not success: see the counts
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 5, "completed": 3, "failed": 2}
    assert set(tenant.lines_of(batch.output_file_id)) == {"ok-0", "ok-1", "ok-2"}
    errors = tenant.lines_of(batch.error_file_id)
    assert set(errors) == {"bad-0", "bad-1"}
    for line in errors.values():
        assert line["error"] is None  # an HTTP failure: it is in the response
        assert line["response"]["status_code"] == 400
        error = line["response"]["body"]["error"]
        assert error["code"] == "content_filter"
        assert error["type"] == "invalid_request_error"
    # The same lines, as the batch's results.
    results = tenant.http.get(f"/v1/batches/{batch.id}/results").json()["data"]
    assert {r["custom_id"]: r["response"]["status_code"] for r in results} == {
        "ok-0": 200,
        "ok-1": 200,
        "ok-2": 200,
        "bad-0": 400,
        "bad-1": 400,
    }


def test_a_file_with_bad_lines_fails_the_batch_naming_every_line(
    tenant: Tenant, engine: Engine
) -> None:
    good = request("a", "sim-gpt-mini")
    body = good["body"]
    content = b"".join(
        orjson.dumps(line) + b"\n"
        for line in (
            good,
            {**good, "custom_id": "a"},
            {k: v for k, v in good.items() if k != "custom_id"},
            {**good, "custom_id": "m", "method": "GET"},
            {**good, "custom_id": "e", "url": "/v1/embeddings"},
            {**good, "custom_id": "b", "body": {**body, "max_tokens": -1}},
            {**good, "custom_id": "u", "body": {**body, "model": "gpt-nope"}},
        )
    )
    content += b"{this is not json\n"
    batch = tenant.sdk.batches.create(
        input_file_id=tenant.upload(content),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    assert batch.status == "failed"
    assert batch.failed_at is not None
    assert batch.in_progress_at is None
    assert batch.errors is not None
    assert batch.errors.object == "list"
    got = [(e.code, e.line, e.param) for e in batch.errors.data or []]
    assert got == [
        ("duplicate_custom_id", 2, "custom_id"),
        ("missing_custom_id", 3, "custom_id"),
        ("invalid_method", 4, "method"),
        ("endpoint_mismatch", 5, "url"),
        ("invalid_request", 6, "body.max_tokens"),
        ("unknown_model", 7, "body.model"),
        ("invalid_json", 8, None),
    ]
    for error in batch.errors.data or []:
        assert (error.message or "").startswith(f"line {error.line}: ")
    assert batch.output_file_id is None
    assert batch.error_file_id is None
    assert jobs_of(engine, batch.id) == {}  # nothing was queued
    assert tenant.sdk.batches.retrieve(batch.id).status == "failed"


def test_batches_are_listed_newest_first_in_pages(tenants: Callable[[], Tenant]) -> None:
    alice, bob = tenants(), tenants()
    ids = [alice.run([request("only", IDLE_MODEL)]).id for _ in range(5)]
    first = alice.sdk.batches.list(limit=2)
    assert [b.id for b in first.data] == [ids[4], ids[3]]
    assert first.has_more
    assert [b.id for b in alice.sdk.batches.list(limit=2, after=ids[3]).data] == [ids[2], ids[1]]
    assert [b.id for b in alice.sdk.batches.list(limit=2)] == ids[::-1]  # SDK paging
    page = alice.http.get("/v1/batches", params={"limit": 2}).json()
    assert (page["object"], page["first_id"], page["last_id"]) == ("list", ids[4], ids[3])
    assert bob.sdk.batches.list().data == []
    assert alice.http.get("/v1/batches", params={"limit": 101}).status_code == 400


def test_another_tenants_batches_and_their_files_are_invisible(
    tenants: Callable[[], Tenant],
) -> None:
    alice, bob = tenants(), tenants()
    batch = alice.wait(alice.run([request("x", "sim-gpt-mini")]).id)
    assert batch.output_file_id is not None
    with pytest.raises(openai.NotFoundError):
        bob.sdk.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        bob.sdk.batches.cancel(batch.id)
    with pytest.raises(openai.NotFoundError):
        bob.sdk.files.content(batch.output_file_id)
    with pytest.raises(openai.NotFoundError):
        bob.sdk.batches.create(
            input_file_id=batch.input_file_id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
        )
    assert bob.sdk.files.list().data == []
    assert alice.sdk.files.content(batch.output_file_id).text


def test_an_output_file_is_no_input_file(tenant: Tenant) -> None:
    batch = tenant.wait(tenant.run([request("x", "sim-gpt-mini")]).id)
    with pytest.raises(openai.BadRequestError) as raised:
        tenant.sdk.batches.create(
            input_file_id=batch.output_file_id or "",
            endpoint="/v1/chat/completions",
            completion_window="24h",
        )
    assert raised.value.code == "invalid_input_file"


def test_an_endpoint_not_served_yet_is_a_clear_400(tenant: Tenant) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        tenant.sdk.batches.create(
            input_file_id=tenant.upload([request("x", "sim-gpt-mini")]),
            endpoint="/v1/moderations",
            completion_window="24h",
        )
    assert raised.value.code == "unsupported_endpoint"


def test_output_expires_after_counts_from_the_end_of_the_batch(tenant: Tenant) -> None:
    created = tenant.run(
        [request("x", "sim-gpt-mini")],
        output_expires_after={"anchor": "created_at", "seconds": 3600},
    )
    batch = tenant.wait(created.id)
    assert batch.completed_at is not None
    output = tenant.sdk.files.retrieve(batch.output_file_id or "")
    assert output.created_at == batch.completed_at
    assert output.expires_at == batch.completed_at + 3600
    with pytest.raises(openai.BadRequestError):
        tenant.run(
            [request("x", "sim-gpt-mini")],
            output_expires_after={"anchor": "created_at", "seconds": 60},
        )
