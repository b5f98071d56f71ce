"""Chains survive what crashes leave behind: a lost message between steps, a worker killed
during a step, steps ended outside a worker (their deadline, a cancellation).

The sim-gemini pool is started and stopped by the tests that need it (later tests rely on
nothing serving sim-gemini), so a step can be held in its queue or killed mid-call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import Engine

from app.cli.stack import Stack
from app.constants import LIVE_MESSAGES_KEY, queue_name
from app.simulator.config import default_config
from app.simulator.control import with_models
from tests.conftest import Simulator, wait_until
from tests.orchestration.support import finished

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]

GEMINI = "sim-gemini"


@pytest.fixture
def gemini_pool(stack: Stack) -> Iterator[Stack]:
    """Starts nothing itself; stops whatever sim-gemini pool the test started."""
    yield stack
    for child in stack.workers.pop(GEMINI, []):
        child.stop()


def two_steps(second_model: str, **chain: Any) -> dict[str, Any]:
    return {
        "chain": {
            "steps": [
                {"role": "draft", "model": "sim-gpt-mini", "prompt": "Draft {input}"},
                {"role": "polish", "model": second_model, "prompt": "Polish {steps.draft}"},
            ]
        },
        "input": "a release note",
        **chain,
    }


def steps_of(api: httpx.Client, chain_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.get(f"/v1/jobs/{chain_id}").json()["steps"]
    return found


def second_step(api: httpx.Client, chain_id: str, status: str) -> dict[str, Any]:
    """The chain's second step, once it exists and has ``status``."""
    seen: list[dict[str, Any]] = []

    def there() -> bool:
        seen[:] = steps_of(api, chain_id)
        return len(seen) == 2 and seen[1]["status"] == status

    wait_until(there, timeout=30, every=0.1)
    return seen[1]


def test_a_step_whose_message_was_lost_is_published_again_and_the_chain_completes(
    api: httpx.Client, redis_client: redis.Redis, gemini_pool: Stack
) -> None:
    chain_id = api.post("/v1/chains", json=two_steps("sim-gemini-flash")).json()["id"]
    polish = second_step(api, chain_id, "queued")  # committed with the draft's success

    # Lost between steps: the queue and the live-message index forget the step's message.
    assert redis_client.delete(queue_name(GEMINI, "normal")) == 1
    redis_client.zrem(LIVE_MESSAGES_KEY, polish["id"])

    gemini_pool.start_workers(GEMINI, concurrency=2)
    gemini_pool.wait_for_workers()
    chain = finished(api, chain_id)
    assert chain["status"] == "succeeded", chain
    assert [s["status"] for s in chain["steps"]] == ["succeeded", "succeeded"]
    step = api.get(f"/v1/jobs/{polish['id']}").json()
    assert [(a["model"], a["status"]) for a in step["attempts"]] == [
        ("sim-gemini-flash", "succeeded")
    ]


def test_a_worker_killed_during_a_step_loses_nothing(
    api: httpx.Client, engine: Engine, simulator: Simulator, gemini_pool: Stack
) -> None:
    slow = with_models(
        default_config(), GEMINI, lambda m: m.model_copy(update={"latency_ms": 3000})
    )
    simulator.configure(slow)
    gemini_pool.start_workers(GEMINI, concurrency=2)
    gemini_pool.wait_for_workers()
    chain_id = api.post("/v1/chains", json=two_steps("sim-gemini-flash")).json()["id"]
    second_step(api, chain_id, "running")  # claimed, its call under way

    for child in gemini_pool.workers.pop(GEMINI):  # a crash: no chance to record anything
        child.kill()
        gemini_pool.children.remove(child)
    gemini_pool.start_workers(GEMINI, concurrency=2)
    gemini_pool.wait_for_workers()

    chain = finished(api, chain_id, timeout=90)  # the lease expires; the reconciler requeues
    assert chain["status"] == "succeeded", chain
    polish = api.get(f"/v1/jobs/{chain['steps'][1]['id']}").json()
    assert [a["status"] for a in polish["attempts"]] == ["succeeded"]  # recorded once


def test_a_step_that_dies_of_its_deadline_in_the_queue_fails_the_chain(
    api: httpx.Client,
) -> None:
    """sim-llama-small has no pool: its step waits until the reconciler fails it, and the
    reconciler's sweep then moves the chain on (to its end)."""
    chain = finished(
        api, api.post("/v1/chains", json=two_steps("sim-llama-small", deadline_s=3)).json()["id"]
    )
    assert chain["status"] == "failed"
    assert chain["error"]["code"] == "deadline"
    assert chain["error"]["message"].startswith("step 2 (polish) failed: deadline")


def test_cancelling_a_step_directly_fails_its_chain(api: httpx.Client) -> None:
    chain_id = api.post("/v1/chains", json=two_steps("sim-llama-small")).json()["id"]
    polish = second_step(api, chain_id, "queued")
    assert api.post(f"/v1/jobs/{polish['id']}/cancel").status_code == 200
    chain = finished(api, chain_id)
    assert chain["status"] == "failed"
    assert (chain["error"]["code"], chain["error"]["message"]) == (
        "cancelled",
        "step 2 (polish) failed: it was cancelled",
    )
