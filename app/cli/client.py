"""A small client of Switchboard's HTTP API, used by the CLI, the demo and the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.errors import SwitchboardError, Unavailable

TERMINAL_BATCH = {"completed", "failed", "expired", "cancelled"}


class ApiError(SwitchboardError):
    """An error the API answered with, carried over as-is."""


class ApiClient:
    def __init__(self, base_url: str, *, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise Unavailable(
                f"cannot reach the API at {self.base_url}: is `switchboard up` running?",
                code="api_unreachable",
            ) from None
        except httpx.TimeoutException:
            raise Unavailable(f"the API at {self.base_url} did not answer in time") from None
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise ApiError(
                    error["message"],
                    code=error["code"],
                    param=error.get("param"),
                    line=error.get("line"),
                    http_status=response.status_code,
                )
            except (ValueError, KeyError, TypeError):
                raise ApiError(
                    f"HTTP {response.status_code} from {path}", http_status=response.status_code
                ) from None
        return response

    def submit_jsonl(
        self, body: bytes, *, priority: str | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        headers = {"content-type": "application/x-ndjson"}
        if idempotency_key:
            headers["idempotency-key"] = idempotency_key
        params = {"priority": priority} if priority else {}
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
        with self._http.stream(
            "GET", f"/v1/batches/{batch_id}/results", params={"format": "jsonl"}
        ) as response:
            if response.status_code >= 400:
                response.read()
                self._request("GET", f"/v1/batches/{batch_id}")  # raises the API's error
            yield from response.iter_lines()

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

    def usage(self, batch_id: str | None = None) -> dict[str, Any]:
        params = {"batch_id": batch_id} if batch_id else {}
        result: dict[str, Any] = self._request("GET", "/v1/usage", params=params).json()
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
