"""Every wire format end to end: a batch and a streamed chat through real workers, the
simulator speaking that format (quirks included), and the ledger.

One simulated provider per adapter (``openai``, ``anthropic``, ``gemini``, ``ollama``,
``groq``, ``openrouter``, ``vllm``, ``lmstudio``); each case starts that provider's pool
(unless the session's ``workers`` already runs it) and stops it after. The simulator is
deterministic, so every token count, answer, tool call and cent is predicted here from its
documented rules (``app.simulator.tokens``) and compared with what the gateway recorded.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from app.cli.stack import Stack
from app.registry.catalog import load_catalog
from app.simulator.config import default_config
from app.simulator.tokens import Reply, generate_reply, prompt_tokens
from app.simulator.tools import spec_of
from tests.conftest import Simulator, wait_for_jobs

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]

CATALOG = load_catalog()
MILLION = Decimal(1_000_000)
MAX_TOKENS = 200
# A 1x1 transparent PNG: real image bytes, inline.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
    )
).decode()
TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


@dataclass(frozen=True)
class Case:
    provider: str
    model: str

    @property
    def vision(self) -> bool:
        return "vision" in CATALOG.models[self.model].capabilities

    @property
    def inline_images_only(self) -> bool:
        return CATALOG.providers[self.provider].wire_format == "ollama"


CASES = [
    Case("sim-openai", "sim-gpt-large"),
    Case("sim-anthropic", "sim-claude-sonnet"),
    Case("sim-gemini", "sim-gemini-flash"),
    Case("sim-ollama", "sim-qwen-vl"),
    Case("sim-groq", "sim-groq-llama"),
    Case("sim-openrouter", "sim-router-gpt"),
    Case("sim-vllm", "sim-vllm-qwen"),
    Case("sim-lmstudio", "sim-lmstudio-qwen"),
]


@pytest.fixture(params=CASES, ids=[c.provider for c in CASES])
def case(request: pytest.FixtureRequest, workers: Stack) -> Iterator[Case]:
    """The case's provider with a worker pool serving it, for this case only."""
    chosen: Case = request.param
    started = chosen.provider not in workers.workers
    if started:
        workers.start_workers(chosen.provider, processes=1, concurrency=4)
    try:
        workers.wait_for_workers()
        yield chosen
    finally:
        if started:
            for child in workers.workers.pop(chosen.provider, []):
                child.stop()


def upstream(model: str) -> Any:
    """The simulated model behind a catalog model."""
    entry = CATALOG.models[model]
    return default_config().providers[entry.provider].models[entry.upstream]


def expected(model: str, prompt: str, *, images: int = 0, tool: bool = False) -> Reply:
    """What the simulator answers ``prompt`` with on ``model`` (its documented rules)."""
    spec = upstream(model)
    return generate_reply(
        [prompt],
        prompt_tokens=prompt_tokens([prompt], images),
        output_range=spec.output_tokens,
        max_tokens=min(MAX_TOKENS, spec.max_output_tokens),
        tool=spec_of(TOOL["function"]["name"], TOOL["function"]["parameters"]) if tool else None,
    )


def cost(model: str, reply: Reply) -> Decimal:
    entry = CATALOG.models[model]
    return (
        reply.prompt_tokens * entry.input_per_mtok + reply.completion_tokens * entry.output_per_mtok
    ) / MILLION


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def lines(case: Case, marker: str) -> list[tuple[dict[str, Any], Reply]]:
    """The batch's requests, each with the answer the simulator will give it."""
    model = case.model
    plain = [f"plain question {i} ({marker})" for i in range(2)]
    requests = [
        ({"custom_id": f"plain-{i}", "prompt": q}, expected(model, q)) for i, q in enumerate(plain)
    ]
    ask = f"what is the weather? ({marker})"
    tool_line = {"custom_id": "tool", "prompt": ask, "tools": [TOOL]}
    requests.append((tool_line, expected(model, ask, tool=True)))
    if case.vision:
        urls = [f"data:image/png;base64,{PNG}"]
        if not case.inline_images_only:
            urls.append("https://images.example/chart.png")
        for n, url in enumerate(urls):
            look = f"describe image {n} ({marker})"
            content = [{"type": "text", "text": look}, image(url)]
            body = {"custom_id": f"image-{n}", "messages": [{"role": "user", "content": content}]}
            requests.append((body, expected(model, look, images=1)))
    return [({**body, "model": model, "max_tokens": MAX_TOKENS}, reply) for body, reply in requests]


def job_rows(engine: Engine, job_ids: list[str]) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, custom_id, status, served_model, served_provider, result, "
                "input_tokens, output_tokens, cost_usd, attempt_count FROM jobs "
                "WHERE id = ANY(:ids)"
            ),
            {"ids": job_ids},
        )
        return {row.custom_id or row.id: row for row in rows}


def attempt_rows(engine: Engine, job_id: str) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT model_id, status, http_status, input_tokens, output_tokens, "
                    "cost_usd FROM attempts WHERE job_id = :id ORDER BY number"
                ),
                {"id": job_id},
            )
        )


def check_recorded(engine: Engine, case: Case, row: Any, reply: Reply) -> None:
    """The job succeeded in one attempt on the case's model, billed what the provider did."""
    assert row.status == "succeeded", row
    assert (row.served_model, row.served_provider) == (case.model, case.provider)
    assert (row.input_tokens, row.output_tokens) == (reply.prompt_tokens, reply.completion_tokens)
    assert row.cost_usd == cost(case.model, reply)
    (attempt,) = attempt_rows(engine, row.id)
    assert (attempt.model_id, attempt.status, attempt.http_status) == (case.model, "succeeded", 200)
    assert (attempt.input_tokens, attempt.output_tokens) == (
        reply.prompt_tokens,
        reply.completion_tokens,
    )
    assert attempt.cost_usd == row.cost_usd
    result = row.result
    if reply.tool_call is not None:
        (call,) = result["tool_calls"]
        assert call["name"] == reply.tool_call.name
        assert json.loads(call["arguments"]) == reply.tool_call.arguments_object
    else:
        assert result["text"] == reply.text
        assert result["tool_calls"] == []


def test_a_batch_runs_through_the_providers_wire_format(
    case: Case, api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    planned = lines(case, uuid.uuid4().hex[:8])
    response = api.post("/v1/batches", json={"requests": [body for body, _ in planned]})
    assert response.status_code in (200, 201), response.text
    job_ids = response.json()["job_ids"]
    assert set(wait_for_jobs(engine, job_ids, timeout=90).values()) == {"succeeded"}

    rows = job_rows(engine, job_ids)
    for body, reply in planned:
        check_recorded(engine, case, rows[body["custom_id"]], reply)
    if case.provider == "sim-openrouter":  # the upstream OpenRouter named is kept
        assert {row.result.get("upstream_provider") for row in rows.values()} == {"SimCloud"}
    # One provider call per request: nothing retried, nothing lost.
    stats = simulator.stats()["providers"][case.provider]
    assert stats["responses"] == {"200": len(planned)}
    assert stats["prompt_tokens"] == sum(reply.prompt_tokens for _, reply in planned)


def test_a_streamed_chat_relays_the_formats_stream_and_bills_its_usage(
    case: Case, api: httpx.Client, engine: Engine
) -> None:
    ask = f"stream me an answer ({uuid.uuid4().hex[:8]})"
    reply = expected(case.model, ask)
    body = {
        "model": case.model,
        "messages": [{"role": "user", "content": ask}],
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with api.stream("POST", "/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200, response.read()
        job_id = response.headers["x-switchboard-job-id"]
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    streamed = "".join(
        choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"]
    )
    assert streamed == reply.text
    usage = next(chunk["usage"] for chunk in chunks if chunk.get("usage"))
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (
        reply.prompt_tokens,
        reply.completion_tokens,
    )
    wait_for_jobs(engine, [job_id])
    (row,) = job_rows(engine, [job_id]).values()
    check_recorded(engine, case, row, reply)


def test_a_request_the_format_cannot_express_fails_at_once_without_a_call(
    api: httpx.Client, engine: Engine, simulator: Simulator
) -> None:
    """Anthropic has no audio input: the job fails ``invalid_request`` on its one attempt,
    nothing reaches the provider, and the worker carries on."""
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    body = {"model": "sim-claude-haiku", "messages": [{"role": "user", "content": [audio]}]}
    submitted = api.post("/v1/jobs", json=body)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    assert wait_for_jobs(engine, [job_id]) == {job_id: "failed"}
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["error"]["code"] == "invalid_request"
    assert "input_audio" in job["error"]["message"]
    (attempt,) = job["attempts"]
    assert (attempt["error_class"], attempt["decision"]) == ("invalid_request", "fail")
    assert simulator.stats()["providers"].get("sim-anthropic", {}).get("requests", 0) == 0
