"""``Switchboard``: a synchronous client for producers, with the seeds' tool names (5.1)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from app.client.http import HttpApi, SwitchboardAPIError

TERMINAL_JOB = frozenset({"succeeded", "failed", "cancelled"})
TERMINAL_BATCH = frozenset({"completed", "failed", "expired", "cancelled"})


class JobFailed(SwitchboardAPIError):
    """A job ended failed or cancelled; ``code`` is its error class, ``job`` the whole job."""

    def __init__(self, job: dict[str, Any]) -> None:
        error = job.get("error") or {}
        super().__init__(
            str(error.get("code") or job["status"]),
            str(error.get("message") or f"job {job['id']} {job['status']}"),
            200,
        )
        self.job = job


class Switchboard:
    """Submit jobs and batches, wait for them, read models, stats and costs."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        poll_initial_s: float = 0.1,
        poll_max_s: float = 2.0,
    ) -> None:
        self.api = HttpApi(base_url, api_key, timeout=timeout)
        self._poll = (poll_initial_s, poll_max_s)

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> Switchboard:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- models --------------------------------------------------------------------------
    def list_models(
        self, provider: str | None = None, capability: str | None = None
    ) -> list[dict[str, Any]]:
        models: list[dict[str, Any]] = self.api.json("GET", "/v1/models")["data"]
        return [
            m
            for m in models
            if (provider is None or m["provider"] == provider)
            and (capability is None or capability in m["capabilities"])
        ]

    def get_model_info(self, model_id: str) -> dict[str, Any]:
        for m in self.api.json("GET", "/v1/models")["data"]:
            if m["id"] == model_id or model_id in m.get("aliases", []):
                found: dict[str, Any] = m
                return found
        raise SwitchboardAPIError("model_not_found", f"no model {model_id!r}", 404)

    # -- jobs ----------------------------------------------------------------------------
    def submit_job(
        self, body: dict[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """POST /v1/jobs: ``{"id", "status", "created"}`` at once; the job runs later."""
        headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
        accepted: dict[str, Any] = self.api.json("POST", "/v1/jobs", json=body, headers=headers)
        return accepted

    def get_job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.api.json("GET", f"/v1/jobs/{job_id}")
        return job

    def wait_for_job(self, job_id: str, *, timeout: float = 300.0) -> dict[str, Any]:
        """Poll with backoff until the job is terminal; raise ``JobFailed`` unless it succeeded."""
        delay, ceiling = self._poll
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job["status"] in TERMINAL_JOB:
                if job["status"] != "succeeded":
                    raise JobFailed(job)
                return job
            if time.monotonic() >= deadline:
                raise SwitchboardAPIError("wait_timeout", f"job {job_id} still {job['status']}", 0)
            time.sleep(delay)
            delay = min(delay * 2, ceiling)

    def generate_chat_completion(
        self,
        messages: list[dict[str, Any]],
        model: str | list[str] | None = None,
        *,
        timeout: float = 300.0,
        **params: Any,
    ) -> dict[str, Any]:
        """Submit a chat job and wait for it: the finished job (``result``, ``usage``, cost)."""
        body = {"messages": messages, **params}
        if model is not None:
            body["model"] = model
        return self.wait_for_job(self.submit_job(body)["id"], timeout=timeout)

    def generate_completion(
        self, prompt: str, model: str | list[str] | None = None, **params: Any
    ) -> dict[str, Any]:
        """A completion from a bare prompt (the gateway's ``prompt`` field)."""
        body = {"prompt": prompt, **params}
        if model is not None:
            body["model"] = model
        timeout = float(body.pop("timeout", 300.0))
        return self.wait_for_job(self.submit_job(body)["id"], timeout=timeout)

    def generate_embeddings(
        self, inputs: str | list[str], model: str | list[str], **params: Any
    ) -> dict[str, Any]:
        """POST /v1/embeddings: OpenAI's answer (``data`` in input order, ``usage``) with float
        vectors unless ``encoding_format="base64"``; ``dimensions`` asks for shorter ones.
        ``model`` may be a fallback list, ``"policy:<name>"`` or ``"strategy:<name>"``."""
        result: dict[str, Any] = self.api.json(
            "POST", "/v1/embeddings", json={"model": model, "input": inputs, **params}
        )
        return result

    # -- chains and ensembles ------------------------------------------------------------
    def run_chain(
        self,
        input: str,
        chain: str | dict[str, Any] | None = None,
        *,
        models: dict[str, str | list[str]] | None = None,
        wait: bool = True,
        timeout: float = 300.0,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """POST /v1/chains: a shipped chain by name (``"code"``), a definition
        (``{"steps": [...]}``), or the one for ``metadata.task_type``; ``models`` runs its
        roles on other models. With ``wait``, the finished chain (``result``, ``steps``, cost;
        ``JobFailed`` unless it succeeded), else ``{"id", "status", "steps", "created"}``."""
        body: dict[str, Any] = {"input": input, **options}
        if chain is not None:
            body["chain"] = chain
        if models is not None:
            body["models"] = models
        return self._orchestrate("/v1/chains", body, wait, timeout, idempotency_key)

    def run_ensemble(
        self,
        messages: list[dict[str, Any]] | str,
        models: list[str | list[str]] | None = None,
        *,
        synthesizer: str = "first_success",
        wait: bool = True,
        timeout: float = 300.0,
        idempotency_key: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """POST /v1/ensembles: the same request to each of ``models`` (or ``branches=``)
        in parallel, combined by ``synthesizer`` (``first_success``, ``majority``, ``judge``
        with ``judge={"model": ...}``); ``messages`` may be a bare prompt."""
        body: dict[str, Any] = {"synthesizer": synthesizer, **params}
        body["prompt" if isinstance(messages, str) else "messages"] = messages
        if models is not None:
            body["models"] = models
        return self._orchestrate("/v1/ensembles", body, wait, timeout, idempotency_key)

    def list_chains(self) -> list[dict[str, Any]]:
        """The shipped chains (GET /v1/chains/definitions): name, description, steps."""
        chains: list[dict[str, Any]] = self.api.json("GET", "/v1/chains/definitions")["data"]
        return chains

    def _orchestrate(
        self,
        path: str,
        body: dict[str, Any],
        wait: bool,
        timeout: float,
        idempotency_key: str | None,
    ) -> dict[str, Any]:
        headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
        accepted: dict[str, Any] = self.api.json("POST", path, json=body, headers=headers)
        if not wait:
            return accepted
        return self.wait_for_job(accepted["id"], timeout=timeout)

    # -- policies ------------------------------------------------------------------------
    def create_routing_policy(
        self, name: str, description: str, rules: list[dict[str, Any]], priority: int = 0
    ) -> dict[str, Any]:
        body = {"name": name, "description": description, "priority": priority, "rules": rules}
        result: dict[str, Any] = self.api.json("POST", "/v1/policies", json=body)
        return result

    # -- reports -------------------------------------------------------------------------
    def get_usage_stats(
        self,
        *,
        period: str | None = None,
        start: str | None = None,
        end: str | None = None,
        group_by: str | None = None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """GET /v1/stats: volume, success rate, latency percentiles, tokens, errors."""
        params = _params(period=period, start=start, end=end, group_by=group_by, tenant=tenant)
        result: dict[str, Any] = self.api.json("GET", "/v1/stats", params=params)
        return result

    def get_cost_report(
        self,
        *,
        period: str | None = None,
        start: str | None = None,
        end: str | None = None,
        group_by: str | None = "model",
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """GET /v1/costs: total, breakdown with percentages, month forecast."""
        params = _params(period=period, start=start, end=end, group_by=group_by, tenant=tenant)
        result: dict[str, Any] = self.api.json("GET", "/v1/costs", params=params)
        return result

    def get_usage(self, batch_id: str | None = None) -> dict[str, Any]:
        """GET /v1/usage: per model, for everything or one batch."""
        result: dict[str, Any] = self.api.json(
            "GET", "/v1/usage", params=_params(batch_id=batch_id)
        )
        return result

    # -- batches -------------------------------------------------------------------------
    def submit_batch(
        self,
        requests: list[dict[str, Any]],
        *,
        priority: str | None = None,
        metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """POST /v1/batches with inline ``requests`` (each a chat body plus ``custom_id``; pass
        ``endpoint="/v1/embeddings"`` or ``"/v1/completions"`` for those endpoints' bodies)."""
        body: dict[str, Any] = {"requests": requests, **fields}
        if priority is not None:
            body["priority"] = priority
        if metadata is not None:
            body["metadata"] = metadata
        headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
        result: dict[str, Any] = self.api.json("POST", "/v1/batches", json=body, headers=headers)
        return result

    def submit_jsonl(
        self,
        body: bytes,
        *,
        priority: str | None = None,
        idempotency_key: str | None = None,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        """POST /v1/batches with an OpenAI batch input file (JSONL); ``endpoint`` is every
        line's ``url`` (the API's default: ``/v1/chat/completions``)."""
        headers = {"content-type": "application/x-ndjson"}
        if idempotency_key:
            headers["idempotency-key"] = idempotency_key
        params = _params(priority=priority, endpoint=endpoint)
        result: dict[str, Any] = self.api.json(
            "POST", "/v1/batches", content=body, headers=headers, params=params
        )
        return result

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.api.json("GET", f"/v1/batches/{batch_id}")
        return result

    def wait_for_batch(
        self,
        batch_id: str,
        *,
        timeout: float = 3600.0,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        poll_s: float | None = None,
    ) -> dict[str, Any]:
        """Poll until the batch is terminal, calling ``on_progress(batch)`` after each poll."""
        delay, ceiling = (poll_s, poll_s) if poll_s else self._poll
        deadline = time.monotonic() + timeout
        while True:
            batch = self.get_batch(batch_id)
            if on_progress is not None:
                on_progress(batch)
            if batch["status"] in TERMINAL_BATCH:
                return batch
            if time.monotonic() >= deadline:
                raise SwitchboardAPIError(
                    "wait_timeout", f"batch {batch_id} still {batch['status']}", 0
                )
            time.sleep(delay)
            delay = min(delay * 2, ceiling)

    def batch_results_lines(self, batch_id: str) -> Iterator[str]:
        """The batch's finished results as raw JSONL lines."""
        return self.api.lines(f"/v1/batches/{batch_id}/results", params={"format": "jsonl"})

    def batch_results(self, batch_id: str) -> Iterator[dict[str, Any]]:
        """The batch's finished results, one dict per request (join on ``custom_id``)."""
        for line in self.batch_results_lines(batch_id):
            result: dict[str, Any] = json.loads(line)
            yield result


def _params(**values: str | None) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}
