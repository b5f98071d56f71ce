"""``/v1/files`` on the real API process: uploads stored in Postgres, read back byte for byte,
listed, deleted, tenant-scoped; bad uploads refused in OpenAI's error shape, storing nothing."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from sqlalchemy import Engine

from app.db.engine import make_sessionmaker, unit_of_work
from app.errors import InvalidInput
from app.files.service import BATCH_FILE_TTL_S
from app.files.service import upload as store_upload
from tests.conftest import count_rows

LINE = {
    "custom_id": "q-1",
    "method": "POST",
    "url": "/v1/chat/completions",
    "body": {"model": "sim-gpt-mini", "messages": [{"role": "user", "content": "Grüß dich ✓"}]},
}


def jsonl(n: int) -> bytes:
    return b"".join(orjson.dumps({**LINE, "custom_id": f"q-{i}"}) + b"\n" for i in range(n))


def upload(client: httpx.Client, content: bytes, **fields: str) -> httpx.Response:
    data = {"purpose": "batch", **fields}
    return client.post(
        "/v1/files", data=data, files={"file": ("requests.jsonl", content, "application/jsonl")}
    )


def rejected(response: httpx.Response, status: int, code: str, param: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["type"] == "invalid_request_error"  # OpenAI's shape: its SDKs raise on it
    if param is not None:
        assert error["param"] == param


@pytest.fixture
def tenant(new_tenant: Callable[[], httpx.Client]) -> httpx.Client:
    return new_tenant()


@pytest.fixture
def sdk(tenant: httpx.Client, api_url: str) -> Iterator[openai.OpenAI]:
    key = tenant.headers["authorization"].removeprefix("Bearer ")
    with openai.OpenAI(base_url=f"{api_url}/v1", api_key=key, max_retries=0) as client:
        yield client


def test_an_upload_is_stored_and_read_back_byte_for_byte(
    sdk: openai.OpenAI, tenant: httpx.Client
) -> None:
    content = jsonl(3)
    created = sdk.files.create(file=("requests.jsonl", content), purpose="batch")
    assert created.id.startswith("file-")
    assert created.object == "file"
    assert created.purpose == "batch"
    assert created.bytes == len(content)
    assert created.filename == "requests.jsonl"
    assert created.status == "processed"
    assert created.expires_at == created.created_at + BATCH_FILE_TTL_S  # OpenAI's 30 days

    assert sdk.files.retrieve(created.id) == created
    assert sdk.files.content(created.id).content == content
    raw = tenant.get(f"/v1/files/{created.id}/content")
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["content-disposition"] == 'attachment; filename="requests.jsonl"'
    assert raw.headers["content-length"] == str(len(content))


def test_a_file_larger_than_a_chunk_comes_back_whole(tenant: httpx.Client) -> None:
    content = jsonl(16_000)  # ≈ 2.5 MB: three chunks, and a spooled upload on disk
    assert len(content) > 2 * (1 << 20)
    created = upload(tenant, content)
    assert created.status_code == 200, created.text
    assert tenant.get(f"/v1/files/{created.json()['id']}/content").content == content


def test_expires_after_sets_when_the_file_expires(sdk: openai.OpenAI) -> None:
    created = sdk.files.create(
        file=("r.jsonl", jsonl(1)),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert created.expires_at == created.created_at + 3600


def test_files_are_listed_newest_first_and_page_by_id(
    sdk: openai.OpenAI, tenant: httpx.Client
) -> None:
    ids = [sdk.files.create(file=(f"{i}.jsonl", jsonl(1)), purpose="batch").id for i in range(3)]
    first = sdk.files.list(limit=2)
    assert [f.id for f in first.data] == [ids[2], ids[1]]
    assert first.has_more
    assert [f.id for f in sdk.files.list(limit=2, after=ids[1]).data] == [ids[0]]
    assert [f.id for f in sdk.files.list(limit=2)] == ids[::-1]  # the SDK pages by itself
    oldest = tenant.get("/v1/files", params={"order": "asc", "limit": 1}).json()
    assert oldest["data"][0]["id"] == ids[0]
    assert tenant.get("/v1/files", params={"purpose": "batch_output"}).json()["data"] == []


def test_a_deleted_file_is_gone(sdk: openai.OpenAI, engine: Engine) -> None:
    created = sdk.files.create(file=("r.jsonl", jsonl(1500)), purpose="batch")
    chunks_before = count_rows(engine, "file_chunks")
    deleted = sdk.files.delete(created.id)
    assert deleted.id == created.id
    assert deleted.deleted
    assert count_rows(engine, "file_chunks") < chunks_before  # its bytes went with it
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        sdk.files.content(created.id)
    with pytest.raises(openai.NotFoundError):
        sdk.files.delete(created.id)


def test_another_tenants_files_are_invisible(
    new_tenant: Callable[[], httpx.Client], api: httpx.Client
) -> None:
    alice, bob = new_tenant(), new_tenant()
    file_id = upload(alice, jsonl(1)).json()["id"]
    for response in (
        bob.get(f"/v1/files/{file_id}"),
        bob.get(f"/v1/files/{file_id}/content"),
        bob.delete(f"/v1/files/{file_id}"),
        bob.post("/v1/batches", json={"input_file_id": file_id, "completion_window": "24h"}),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "file_not_found"
    assert bob.get("/v1/files").json()["data"] == []
    assert alice.get(f"/v1/files/{file_id}").status_code == 200  # bob's delete did nothing
    assert api.get(f"/v1/files/{file_id}").status_code == 200  # the operator sees across


def test_an_uploaded_name_loses_its_path_and_keeps_its_letters(tenant: httpx.Client) -> None:
    files = {"file": ("../../etc/prüfung  1.jsonl", jsonl(1), "application/jsonl")}
    created = tenant.post("/v1/files", data={"purpose": "batch"}, files=files)
    assert created.status_code == 200, created.text
    assert created.json()["filename"] == "prüfung 1.jsonl"
    disposition = tenant.get(f"/v1/files/{created.json()['id']}/content").headers[
        "content-disposition"
    ]
    assert disposition == (
        "attachment; filename=\"pr_fung 1.jsonl\"; filename*=UTF-8''pr%C3%BCfung%201.jsonl"
    )


@pytest.fixture
def nothing_stored(engine: Engine) -> Iterator[None]:
    before = (count_rows(engine, "files"), count_rows(engine, "file_chunks"))
    yield
    assert (count_rows(engine, "files"), count_rows(engine, "file_chunks")) == before


@pytest.mark.usefixtures("nothing_stored")
class TestRefusedUploadsStoreNothing:
    def test_a_purpose_other_than_batch(self, sdk: openai.OpenAI, tenant: httpx.Client) -> None:
        rejected(upload(tenant, jsonl(1), purpose="fine-tune"), 400, "invalid_purpose", "purpose")
        with pytest.raises(openai.BadRequestError) as raised:
            sdk.files.create(file=("r.jsonl", jsonl(1)), purpose="assistants")
        assert raised.value.code == "invalid_purpose"

    def test_no_purpose(self, tenant: httpx.Client) -> None:
        response = tenant.post("/v1/files", files={"file": ("r.jsonl", jsonl(1))})
        rejected(response, 400, "missing_required_parameter", "purpose")

    def test_an_empty_file(self, tenant: httpx.Client) -> None:
        rejected(upload(tenant, b""), 400, "empty_file", "file")
        rejected(upload(tenant, b"\n  \n\n"), 400, "empty_file", "file")

    def test_more_lines_than_a_batch_holds(self, tenant: httpx.Client) -> None:
        response = upload(tenant, b'{"custom_id": "x"}\n' * 50_001)
        rejected(response, 400, "too_many_lines", "file")
        assert "50000" in response.json()["error"]["message"]

    def test_no_file(self, tenant: httpx.Client) -> None:
        fields: Any = {"purpose": (None, "batch"), "other": (None, "x")}
        rejected(tenant.post("/v1/files", files=fields), 400, "invalid_request", "other")
        response = tenant.post("/v1/files", files={"purpose": (None, "batch")})
        rejected(response, 400, "missing_required_parameter", "file")

    def test_a_file_sent_as_a_plain_field(self, tenant: httpx.Client) -> None:
        fields = {"purpose": (None, "batch"), "file": (None, jsonl(1))}
        rejected(tenant.post("/v1/files", files=fields), 400, "invalid_request", "file")

    def test_a_bad_expiry(self, tenant: httpx.Client) -> None:
        too_short = {"expires_after[anchor]": "created_at", "expires_after[seconds]": "60"}
        rejected(upload(tenant, jsonl(1), **too_short), 400, "invalid_request")
        assert "expires_after.seconds" in upload(tenant, jsonl(1), **too_short).text
        other_anchor = {"expires_after[anchor]": "now", "expires_after[seconds]": "3600"}
        rejected(upload(tenant, jsonl(1), **other_anchor), 400, "invalid_request")
        only_seconds = {"expires_after[seconds]": "3600"}
        rejected(upload(tenant, jsonl(1), **only_seconds), 400, "invalid_request")

    def test_not_multipart(self, tenant: httpx.Client) -> None:
        response = tenant.post("/v1/files", json={"purpose": "batch"})
        rejected(response, 415, "unsupported_media_type")

    def test_a_file_over_the_size_limit(self, engine: Engine) -> None:
        # The same upload path with a limit small enough for a test (the API's is 200 MB).
        with (
            pytest.raises(InvalidInput) as raised,
            unit_of_work(make_sessionmaker(engine)) as session,
        ):
            store_upload(
                session,
                tenant_id="default",
                filename="big.jsonl",
                source=io.BytesIO(jsonl(50)),
                expires_after_s=None,
                max_bytes=1000,
                max_lines=1000,
            )
        assert (raised.value.code, raised.value.http_status) == ("file_too_large", 413)

    def test_unknown_files_are_404(self, tenant: httpx.Client) -> None:
        rejected(tenant.get("/v1/files/file-nope"), 404, "file_not_found")
        rejected(tenant.get("/v1/files/file-nope/content"), 404, "file_not_found")
