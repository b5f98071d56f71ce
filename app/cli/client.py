"""A small client of Switchboard's HTTP API, used by the CLI, the demo and the benchmarks."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.client.http import HttpApi, SwitchboardAPIError
from app.client.sync import TERMINAL_BATCH
from app.config import get_settings
from app.tenants.keys import admin_key

ApiError = SwitchboardAPIError  # the name the CLI and benchmarks know


def default_api_key() -> str | None:
    """``SWITCHBOARD_API_KEY`` (a tenant's key), else the admin key: from
    ``SWITCHBOARD_ADMIN_KEY`` or the data folder of a stack started on this machine."""
    return os.environ.get("SWITCHBOARD_API_KEY") or admin_key(get_settings())


def first_url(body: bytes) -> str | None:
    """The ``url`` of a JSONL body's first line, if it is an OpenAI batch line: the batch's
    endpoint (the API refuses lines whose ``url`` is another)."""
    for line in io.BytesIO(body):
        if not line.strip():
            continue
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None  # the API names the line
        url = raw.get("url") if isinstance(raw, dict) else None
        return url if isinstance(url, str) else None
    return None


class ApiClient(HttpApi):
    """The CLI's calls on the shared HTTP layer (``app.client.http``), with the key
    ``default_api_key`` finds unless given one."""

    def __init__(
        self, base_url: str, *, timeout: float = 120.0, api_key: str | None = None
    ) -> None:
        super().__init__(base_url, api_key or default_api_key(), timeout=timeout)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.request(method, path, **kwargs)

    def submit_jsonl(
        self,
        body: bytes,
        *,
        priority: str | None = None,
        idempotency_key: str | None = None,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        headers = {"content-type": "application/x-ndjson"}
        if idempotency_key:
            headers["idempotency-key"] = idempotency_key
        given = {"priority": priority, "endpoint": endpoint}
        params = {k: v for k, v in given.items() if v}
        result: dict[str, Any] = self._request(
            "POST", "/v1/batches", content=body, headers=headers, params=params
        ).json()
        return result

    def submit_batch(self, payload: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", "/v1/batches", json=payload).json()
        return result

    def submit_job(self, payload: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", "/v1/jobs", json=payload).json()
        return result

    def job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/v1/jobs/{job_id}").json()
        return result

    def batch(self, batch_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/v1/batches/{batch_id}").json()
        return result

    def results_jsonl(self, batch_id: str) -> Iterator[str]:
        return self.lines(f"/v1/batches/{batch_id}/results", params={"format": "jsonl"})

    def add_key(self, provider: str, label: str, secret: str, **limits: int) -> dict[str, Any]:
        body = {"label": label, "secret": secret, **limits}
        result: dict[str, Any] = self._request(
            "POST", f"/v1/providers/{provider}/keys", json=body
        ).json()
        return result

    def keys(self, provider: str | None = None) -> list[dict[str, Any]]:
        path = f"/v1/providers/{provider}/keys" if provider else "/v1/keys"
        data: list[dict[str, Any]] = self._request("GET", path).json()["data"]
        return data

    def key_action(
        self, provider: str, key_id: str, action: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """``rotate``, ``disable`` or ``enable`` one of ``provider``'s keys."""
        path = f"/v1/providers/{provider}/keys/{key_id}/{action}"
        result: dict[str, Any] = self._request("POST", path, json=body).json()
        return result

    def delete_key(self, provider: str, key_id: str) -> None:
        self._request("DELETE", f"/v1/providers/{provider}/keys/{key_id}")

    def update_provider(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "PATCH", f"/v1/providers/{name}", json=changes
        ).json()
        return result

    def breakers(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._request("GET", "/v1/breakers").json()["data"]
        return data

    def models(
        self, *, provider: str | None = None, capabilities: list[str] | None = None
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"capability": capabilities or []}
        if provider:
            params["provider"] = provider
        data: list[dict[str, Any]] = self._request("GET", "/v1/models", params=params).json()[
            "data"
        ]
        return data

    def stats(self, params: dict[str, str]) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/v1/stats", params=params).json()
        return result

    def costs(self, params: dict[str, str]) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/v1/costs", params=params).json()
        return result

    def route(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/route``: which model a strategy request would go to (no job made)."""
        result: dict[str, Any] = self._request("POST", "/v1/route", json=payload).json()
        return result

    def performance(self, model: str | None = None) -> list[dict[str, Any]]:
        """Live performance of one model, or of every model."""
        if model is not None:
            return [self._request("GET", f"/v1/models/{model}/performance").json()]
        data: list[dict[str, Any]] = self._request("GET", "/v1/performance").json()["data"]
        return data

    def usage(self, batch_id: str | None = None) -> dict[str, Any]:
        params = {"batch_id": batch_id} if batch_id else {}
        result: dict[str, Any] = self._request("GET", "/v1/usage", params=params).json()
        return result

    def policies(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._request("GET", "/v1/policies").json()["data"]
        return data

    def policy(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/v1/policies/{quote(name)}").json()
        return result

    def create_policy(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", "/v1/policies", json=body).json()
        return result

    def replace_policy(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/v1/policies/{quote(name)}"
        result: dict[str, Any] = self._request("PUT", path, json=body).json()
        return result

    def delete_policy(self, name: str) -> None:
        self._request("DELETE", f"/v1/policies/{quote(name)}")

    def resolve_policy(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/v1/policies/{quote(name)}/resolve"
        result: dict[str, Any] = self._request("POST", path, json=body).json()
        return result

    def wait_for_batch(
        self, batch_id: str, *, show_progress: bool = True, poll_s: float = 0.25
    ) -> dict[str, Any]:
        """Poll until the batch is terminal, drawing a progress bar of finished requests."""
        batch = self.batch(batch_id)
        total = batch["request_counts"]["total"]
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, disable=not show_progress, transient=False) as progress:
            task = progress.add_task(batch_id, total=total, failed=0)
            while True:
                counts = batch["request_counts"]
                progress.update(
                    task, completed=counts["completed"] + counts["failed"], failed=counts["failed"]
                )
                if batch["status"] in TERMINAL_BATCH:
                    return batch
                time.sleep(poll_s)
                batch = self.batch(batch_id)
