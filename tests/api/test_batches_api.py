"""``/v1/batches`` on the real API process: JSON and JSONL in, OpenAI-shaped batch out."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import redis
from sqlalchemy import Engine, text

from tests.api.test_jobs_api import IDLE_MODEL, queued_messages
from tests.conftest import count_rows


def item(i: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "custom_id": f"req-{i}",
        "model": IDLE_MODEL,
        "messages": [{"role": "user", "content": f"Question {i}"}],
        "max_tokens": 8,
    }
    body.update(overrides)
    return body


def jsonl(lines: list[Any]) -> bytes:
    return b"\n".join(orjson.dumps(line) for line in lines) + b"\n"


def test_a_json_batch_returns_an_openai_shaped_batch_and_queues_every_job(
    api: httpx.Client, engine: Engine, redis_client: redis.Redis
) -> None:
    before = queued_messages(redis_client)
    response = api.post(
        "/v1/batches",
        json={"requests": [item(i) for i in range(25)], "metadata": {"run": "nightly"}},
    )
    assert response.status_code == 200, response.text
    batch = response.json()
    assert batch["id"].startswith("batch_")
    assert batch["object"] == "batch"
    assert batch["status"] == "in_progress"
    assert batch["endpoint"] == "/v1/chat/completions"
    assert batch["completion_window"] == "24h"
    assert batch["request_counts"] == {"total": 25, "completed": 0, "failed": 0}
    assert batch["metadata"] == {"run": "nightly"}
    assert batch["input_file_id"] is None
    assert batch["expires_at"] - batch["created_at"] == 24 * 3600
    assert len(batch["job_ids"]) == 25
    assert queued_messages(redis_client) == before + 25
    assert int(redis_client.llen("sim-ollama.low")) >= 25  # batches default to low priority
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT custom_id, status FROM jobs WHERE batch_id = :b ORDER BY id"),
            {"b": batch["id"]},
        ).all()
    assert [r.custom_id for r in rows] == [f"req-{i}" for i in range(25)]
    assert {r.status for r in rows} == {"queued"}
    assert api.get(f"/v1/batches/{batch['id']}").json()["request_counts"]["total"] == 25


def test_a_jsonl_batch_of_openai_batch_lines(api: httpx.Client) -> None:
    lines = [
        {
            "custom_id": f"line-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": IDLE_MODEL, "messages": [{"role": "user", "content": "hi"}]},
        }
        for i in range(3)
    ]
    response = api.post(
        "/v1/batches",
        content=jsonl(lines),
        params={"priority": "high"},
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["priority"] == "high"
    assert response.json()["request_counts"]["total"] == 3


def test_the_same_idempotency_key_returns_the_same_batch(api: httpx.Client, engine: Engine) -> None:
    body = {"requests": [item(i) for i in range(3)]}
    headers = {"Idempotency-Key": "batch-key-1"}
    first = api.post("/v1/batches", json=body, headers=headers).json()
    jobs_before = count_rows(engine, "jobs")
    second = api.post("/v1/batches", json=body, headers=headers).json()
    assert second["id"] == first["id"]
    assert second["job_ids"] == first["job_ids"]
    assert count_rows(engine, "jobs") == jobs_before


def assert_rejected(
    response: httpx.Response,
    status: int,
    code: str,
    *,
    line: int | None = None,
    param: str | None = None,
) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if line is not None:
        assert error["line"] == line
        assert f"line {line}" in error["message"]
    if param is not None:
        assert error["param"] == param


@pytest.fixture
def nothing_written(engine: Engine, redis_client: redis.Redis) -> Any:
    counts = (
        count_rows(engine, "jobs"),
        count_rows(engine, "batches"),
        queued_messages(redis_client),
    )
    yield
    assert (
        count_rows(engine, "jobs"),
        count_rows(engine, "batches"),
        queued_messages(redis_client),
    ) == counts


@pytest.mark.usefixtures("nothing_written")
class TestRejectedBatchesWriteNothing:
    def test_one_bad_request_rejects_the_whole_batch(self, api: httpx.Client) -> None:
        requests = [item(0), item(1), item(2, max_tokens=-1)]
        response = api.post("/v1/batches", json={"requests": requests})
        assert_rejected(response, 400, "invalid_request", param="requests[2].max_tokens")

    def test_an_unknown_model_names_its_request(self, api: httpx.Client) -> None:
        response = api.post("/v1/batches", json={"requests": [item(0), item(1, model="nope")]})
        assert_rejected(response, 400, "unknown_model", param="requests[1].model")

    def test_duplicate_custom_ids(self, api: httpx.Client) -> None:
        response = api.post("/v1/batches", json={"requests": [item(0), item(1), item(0)]})
        assert_rejected(response, 400, "duplicate_custom_id", param="requests[2].custom_id")
        assert "req-0" in response.json()["error"]["message"]

    def test_duplicate_custom_ids_in_jsonl_name_the_line(self, api: httpx.Client) -> None:
        response = api.post(
            "/v1/batches",
            content=jsonl([item(0), item(1), item(0)]),
            headers={"content-type": "application/jsonl"},
        )
        assert_rejected(response, 400, "duplicate_custom_id", line=3)

    def test_a_non_utf8_line(self, api: httpx.Client) -> None:
        body = jsonl([item(0)]) + b'{"custom_id": "\xff\xfe", "model": "x"}\n'
        response = api.post(
            "/v1/batches", content=body, headers={"content-type": "application/x-ndjson"}
        )
        assert_rejected(response, 400, "invalid_encoding", line=2)

    def test_a_line_that_is_not_json(self, api: httpx.Client) -> None:
        body = jsonl([item(0), item(1)]) + b"{not json\n"
        response = api.post(
            "/v1/batches", content=body, headers={"content-type": "application/x-ndjson"}
        )
        assert_rejected(response, 400, "invalid_json", line=3)

    def test_a_bad_field_in_jsonl_names_line_and_field(self, api: httpx.Client) -> None:
        body = jsonl([item(0), item(1, priority="urgent")])
        response = api.post(
            "/v1/batches", content=body, headers={"content-type": "application/x-ndjson"}
        )
        assert_rejected(response, 400, "invalid_request", line=2, param="priority")

    def test_unknown_model_in_jsonl_names_the_line(self, api: httpx.Client) -> None:
        body = jsonl([item(0), item(1), item(2, model="gpt-9")])
        response = api.post(
            "/v1/batches", content=body, headers={"content-type": "application/x-ndjson"}
        )
        assert_rejected(response, 400, "unknown_model", line=3)

    def test_a_batch_over_the_limit(self, api: httpx.Client) -> None:
        tiny = {"model": IDLE_MODEL, "prompt": "x"}
        response = api.post("/v1/batches", json={"requests": [tiny] * 50_001})
        assert_rejected(response, 413, "batch_too_large", param="requests")
        assert "50000" in response.json()["error"]["message"]

    def test_a_jsonl_batch_over_the_limit(self, api: httpx.Client) -> None:
        body = jsonl([{"model": IDLE_MODEL, "prompt": "x"}]) * 50_001
        response = api.post(
            "/v1/batches", content=body, headers={"content-type": "application/x-ndjson"}
        )
        assert_rejected(response, 413, "batch_too_large")

    def test_an_empty_batch(self, api: httpx.Client) -> None:
        assert_rejected(api.post("/v1/batches", json={"requests": []}), 400, "empty_batch")
        assert_rejected(
            api.post(
                "/v1/batches", content=b"\n\n", headers={"content-type": "application/x-ndjson"}
            ),
            400,
            "empty_batch",
        )

    def test_malformed_json(self, api: httpx.Client) -> None:
        response = api.post(
            "/v1/batches", content=b'{"requests": [', headers={"content-type": "application/json"}
        )
        assert_rejected(response, 400, "invalid_json")

    def test_an_unsupported_content_type(self, api: httpx.Client) -> None:
        response = api.post("/v1/batches", content=b"a,b", headers={"content-type": "text/csv"})
        assert_rejected(response, 415, "unsupported_media_type")

    def test_an_unknown_input_file_is_a_404(self, api: httpx.Client) -> None:
        response = api.post("/v1/batches", json={"input_file_id": "file-abc"})
        assert_rejected(response, 404, "file_not_found", param="input_file_id")
        assert response.json()["error"]["type"] == "invalid_request_error"  # OpenAI's shape

    def test_requests_and_an_input_file_together(self, api: httpx.Client) -> None:
        body = {"requests": [item(0)], "input_file_id": "file-abc"}
        assert_rejected(api.post("/v1/batches", json=body), 400, "invalid_request")

    def test_an_endpoint_not_served(self, api: httpx.Client) -> None:
        body = {"requests": [item(0)], "endpoint": "/v1/moderations"}
        response = api.post("/v1/batches", json=body)
        assert_rejected(response, 400, "unsupported_endpoint", param="endpoint")
        assert "/v1/chat/completions" in response.json()["error"]["message"]

    def test_an_openai_line_for_another_endpoint_names_its_line(self, api: httpx.Client) -> None:
        line = {"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {}}
        response = api.post(
            "/v1/batches", content=jsonl([line]), headers={"content-type": "application/jsonl"}
        )
        assert_rejected(response, 400, "endpoint_mismatch", line=1, param="url")

    def test_an_unknown_batch_is_a_404(self, api: httpx.Client) -> None:
        assert_rejected(api.get("/v1/batches/batch_nope"), 404, "batch_not_found")
        assert_rejected(api.get("/v1/batches/batch_nope/results"), 404, "batch_not_found")
