"""The official ``openai`` SDK pointed at the test API with a tenant's own key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import openai
import orjson
import pytest
from openai.types import Batch

from tests.conftest import wait_until

Endpoint = Literal["/v1/chat/completions", "/v1/embeddings", "/v1/completions"]
ENDED = ("completed", "failed", "expired", "cancelled")


@dataclass
class Tenant:
    """A tenant as its users see it: the OpenAI SDK and plain HTTP, both with its key."""

    sdk: openai.OpenAI
    http: httpx.Client
    id: str

    def upload(self, lines: list[dict[str, Any]] | bytes) -> str:
        content = lines if isinstance(lines, bytes) else jsonl(lines)
        return self.sdk.files.create(file=("batch.jsonl", content), purpose="batch").id

    def run(
        self, lines: list[dict[str, Any]], endpoint: Endpoint = "/v1/chat/completions", **extra: Any
    ) -> Batch:
        """Upload ``lines`` and create a batch of them, as OpenAI's guide does."""
        return self.sdk.batches.create(
            input_file_id=self.upload(lines),
            endpoint=endpoint,
            completion_window="24h",
            **extra,
        )

    def wait(self, batch_id: str, *statuses: str, timeout: float = 60) -> Batch:
        """Poll ``batches.retrieve`` until the batch reaches one of ``statuses``."""
        wanted = statuses or ENDED
        found: list[Batch] = []

        def reached() -> bool:
            found[:] = [self.sdk.batches.retrieve(batch_id)]
            return found[0].status in wanted

        wait_until(reached, timeout=timeout, every=0.2)
        return found[0]

    def lines_of(self, file_id: str | None) -> dict[str, dict[str, Any]]:
        """A batch file's lines joined on ``custom_id`` (their order is not guaranteed)."""
        assert file_id is not None
        text = self.sdk.files.content(file_id).text
        lines = [orjson.loads(line) for line in text.splitlines()]
        joined = {line["custom_id"]: line for line in lines}
        assert len(joined) == len(lines)
        return joined


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def request(custom_id: str, model: str, prompt: str = "Hello", **body: Any) -> dict[str, Any]:
    """One line of an OpenAI batch input file."""
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": prompt}], **body},
    }


@pytest.fixture
def tenants(new_tenant: Callable[[], httpx.Client], api_url: str) -> Iterator[Callable[[], Tenant]]:
    made: list[openai.OpenAI] = []

    def make() -> Tenant:
        http = new_tenant()
        key = http.headers["authorization"].removeprefix("Bearer ")
        sdk = openai.OpenAI(base_url=f"{api_url}/v1", api_key=key, max_retries=0)
        made.append(sdk)
        return Tenant(sdk, http, http.tenant_id)  # type: ignore[attr-defined]

    yield make
    for sdk in made:
        sdk.close()


@pytest.fixture
def tenant(tenants: Callable[[], Tenant]) -> Tenant:
    return tenants()
