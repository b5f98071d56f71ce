"""The status page: public and locked down; its data for the admin alone, and right after a
batch; and in a real browser, the charts drawn from that batch, refreshing by themselves."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import Engine, text

from app.cli.stack import Stack
from tests.conftest import wait_for_jobs, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.e2e]

SUCCEEDING = 8
FAILING = 2  # on a model whose tpm no call fits in: each fails at once as rate_limit
IDLE_MODEL = "sim-gemini-flash"  # no worker serves sim-gemini in the tests: its queue only fills


@dataclass(frozen=True)
class Finished:
    model: str  # the batch succeeded on it
    cramped: str  # these jobs failed on it, never called
    failed_jobs: list[str]
    gone: str  # one job failed on it (its upstream does not exist), opening its breaker
    cost: Decimal  # what the ledger says the model cost


def _model(api: httpx.Client, prefix: str, upstream: str = "sim-gpt-mini", **extra: Any) -> str:
    model_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    body = {
        "id": model_id,
        "provider": "sim-openai",
        "upstream": upstream,
        "capabilities": ["chat"],
        "context_window": 32000,
        "max_output_tokens": 2000,
        "input_per_mtok": "0.30",
        "output_per_mtok": "1.20",
        **extra,
    }
    created = api.post("/v1/models", json=body)
    assert created.status_code == 201, created.text
    return model_id


def _batch(api: httpx.Client, model: str, count: int) -> list[str]:
    requests = [
        {"model": model, "messages": [{"role": "user", "content": f"Say {i}"}], "max_tokens": 12}
        for i in range(count)
    ]
    created = api.post("/v1/batches", json={"requests": requests})
    assert created.status_code == 200, created.text
    ids: list[str] = created.json()["job_ids"]
    return ids


@pytest.fixture(scope="module")
def finished(workers: Stack, api: httpx.Client, engine: Engine) -> Iterator[Finished]:
    """A batch that succeeded on a model of its own, jobs that failed on two others."""
    model = _model(api, "board")
    cramped = _model(api, "board-cramped", tpm=10)
    gone = _model(api, "board-gone", "no-such-model")
    jobs = _batch(api, model, SUCCEEDING)
    failed = _batch(api, cramped, FAILING) + _batch(api, gone, 1)
    statuses = wait_for_jobs(engine, jobs + failed)
    assert [statuses[j] for j in jobs] == ["succeeded"] * SUCCEEDING
    assert [statuses[j] for j in failed] == ["failed"] * (FAILING + 1)
    with engine.connect() as conn:
        cost = conn.execute(
            text("SELECT sum(cost_usd) FROM attempts WHERE model_id = :m"), {"m": model}
        ).scalar_one()
    yield Finished(model, cramped, failed[:FAILING], gone, Decimal(cost))
    api.post(f"/v1/breakers/model:{gone}/reset").raise_for_status()
    with engine.begin() as conn:
        ids = [model, cramped, gone]
        conn.execute(text("DELETE FROM models WHERE id = ANY(:ids)"), {"ids": ids})


def test_the_page_is_public_static_and_strict(anonymous: httpx.Client) -> None:
    page = anonymous.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    script = anonymous.get("/dashboard/dashboard.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text  # it writes text, never markup
    missing = anonymous.get("/dashboard/secrets.txt")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_the_data_is_for_the_admin_alone(
    anonymous: httpx.Client, new_tenant: Callable[[], httpx.Client]
) -> None:
    refused = anonymous.get("/v1/dashboard")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "missing_api_key"
    forbidden = new_tenant().get("/v1/dashboard")
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "admin_required"


def _dashboard(api: httpx.Client, shows: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    data: dict[str, Any] = {}

    def ready() -> bool:
        nonlocal data
        answer = api.get("/v1/dashboard")
        assert answer.status_code == 200, answer.text
        data = answer.json()
        return shows(data)

    wait_until(ready, timeout=15, every=0.5)  # a snapshot lives a couple of seconds
    return data


def test_the_data_after_a_batch(api: httpx.Client, finished: Finished) -> None:
    def has_batch(d: dict[str, Any]) -> bool:
        return any(line["model"] == finished.model for line in d["spend"]["by_model"])

    data = _dashboard(api, has_batch)
    assert data["services"] == {"postgres": True, "redis": True}
    (line,) = [line for line in data["spend"]["by_model"] if line["model"] == finished.model]
    assert Decimal(line["cost_usd"]) == finished.cost
    assert line["attempts"] == SUCCEEDING

    minutes = data["throughput"]["per_minute"]
    assert len(minutes) == 60
    assert sum(m["succeeded"] for m in minutes) >= SUCCEEDING
    assert sum(m["failed"] for m in minutes) >= FAILING + 1
    assert data["last_hour"]["jobs"] >= SUCCEEDING + FAILING + 1
    assert 0 < data["last_hour"]["success_rate"] < 1

    failures = {f["job_id"]: f for f in data["failures"]}
    for job_id in finished.failed_jobs:
        assert failures[job_id]["model"] == finished.cramped
        assert failures[job_id]["error_class"] == "rate_limit"
        assert failures[job_id]["message"]
    assert finished.gone in {f["model"] for f in data["failures"]}
    moments = [f["finished_at"] for f in data["failures"]]
    assert moments == sorted(moments, reverse=True)

    queues = {q["queue"]: q for q in data["queues"]}
    assert {"sim-openai.high", "sim-openai.normal", "sim-openai.low"} <= set(queues)
    assert all(isinstance(q["messages"], int) for q in queues.values())
    breakers = {b["target"]: b for b in data["breakers"]}
    assert breakers[f"model:{finished.gone}"]["state"] == "open"


def test_the_browser_draws_the_batch_and_keeps_refreshing(
    browser: Browser,
    api_url: str,
    admin_key: str,
    api: httpx.Client,
    new_tenant: Callable[[], httpx.Client],
    finished: Finished,
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{api_url}/dashboard")
        expect(page.locator("#login")).to_be_visible()
        page.fill("#key", admin_key)
        page.click("#login-form button[type=submit]")

        spent = page.locator(f'#spend-chart g.spend-line[data-model="{finished.model}"]')
        expect(spent).to_have_count(1, timeout=20_000)
        expect(page.locator("#login")).to_be_hidden()
        expect(spent.locator("text.model")).to_have_text(finished.model)
        assert float(spent.locator("rect.bar").get_attribute("width") or 0) > 0
        assert page.locator("#throughput-chart rect.bar.succeeded").count() >= 1
        assert page.locator("#throughput-chart rect.bar.failed").count() >= 1
        expect(page.locator("#tile-success")).to_have_text(re.compile(r"^\d+(\.\d)?%$"))
        row = page.locator('#queue-table tr[data-provider="sim-openai"]')
        for priority in ("high", "normal", "low"):
            expect(row.locator(f'td[data-queue="sim-openai.{priority}"]')).to_have_count(1)
        failure = page.locator(f'#failure-table tr[data-job="{finished.failed_jobs[0]}"]')
        expect(failure).to_contain_text("rate_limit")
        breaker = page.locator(f'#breakers li[data-target="model:{finished.gone}"]')
        expect(breaker.locator(".badge")).to_have_text("open")
        expect(breaker).to_contain_text("held open by the gateway")

        # It refreshes by itself: a job queued now shows on its queue without a reload.
        idle = page.locator('td[data-queue="sim-gemini.normal"]')
        expect(idle).to_have_count(1)
        shown = int((idle.text_content() or "0").replace(",", ""))
        job = api.post(
            "/v1/jobs", json={"model": IDLE_MODEL, "prompt": "wait", "priority": "normal"}
        )
        try:
            expect(idle).to_have_text(f"{shown + 1:,}", timeout=20_000)
        finally:
            api.post(f"/v1/jobs/{job.json()['id']}/cancel").raise_for_status()

        # The key is kept: a reload goes straight to the board; "Forget key" signs out.
        page.reload()
        expect(page.locator("#board")).to_be_visible(timeout=20_000)
        page.click("#forget")
        expect(page.locator("#login")).to_be_visible()

        # A tenant's key is refused, and the page says why.
        tenant_key = new_tenant().headers["authorization"].removeprefix("Bearer ")
        page.fill("#key", tenant_key)
        page.click("#login-form button[type=submit]")
        expect(page.locator("#login-error")).to_contain_text("not the admin key")
        expect(page.locator("#board")).to_be_hidden()
        assert page.evaluate("localStorage.getItem('switchboard.adminKey')") is None
    finally:
        context.close()
