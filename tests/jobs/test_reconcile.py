"""The reconciler, on Celery beat, repairs what crashes leave behind.

Jobs here target sim-llama-small, whose provider has no worker in the tests: whatever the
reconciler publishes stays in its queue, where the test can see it.
"""

from __future__ import annotations

import httpx
import orjson
import pytest
import redis
from sqlalchemy import Engine, text

from app.constants import LIVE_MESSAGES_KEY
from tests.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]

QUEUE = "sim-ollama.normal"


def submit(api: httpx.Client) -> str:
    body = {"model": "sim-llama-small", "prompt": "hi", "priority": "normal"}
    return str(api.post("/v1/jobs", json=body).json()["id"])


def messages_for(client: redis.Redis, job_id: str) -> list[bytes]:
    return [m for m in client.lrange(QUEUE, 0, -1) if job_id.encode() in m]


def drop_message(client: redis.Redis, job_id: str) -> None:
    """What a Redis flush does to one job: its message and its live entry vanish."""
    for message in messages_for(client, job_id):
        client.lrem(QUEUE, 0, message)
    client.zrem(LIVE_MESSAGES_KEY, job_id)


def test_a_queued_job_whose_message_was_lost_is_published_again(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    job_id = submit(api)
    drop_message(redis_client, job_id)
    assert messages_for(redis_client, job_id) == []
    wait_until(lambda: len(messages_for(redis_client, job_id)) == 1, timeout=15)
    assert redis_client.zscore(LIVE_MESSAGES_KEY, job_id) is not None
    body = orjson.loads(messages_for(redis_client, job_id)[0])
    assert body["headers"]["task"] == "switchboard.run_job"


def test_a_job_whose_worker_died_holding_it_goes_back_to_its_queue(
    api: httpx.Client, engine: Engine, redis_client: redis.Redis
) -> None:
    job_id = submit(api)
    drop_message(redis_client, job_id)
    with engine.begin() as conn:  # as a worker leaves it if killed mid-call
        conn.execute(
            text(
                "UPDATE jobs SET status = 'running', claim_token = claim_token + 1, "
                "lease_until = now() - interval '1 second' WHERE id = :id"
            ),
            {"id": job_id},
        )
    wait_until(lambda: len(messages_for(redis_client, job_id)) == 1, timeout=15)
    with engine.connect() as conn:
        status, token = conn.execute(
            text("SELECT status, claim_token FROM jobs WHERE id = :id"), {"id": job_id}
        ).one()
    assert status == "queued"
    assert token == 2  # the dead worker's claim (1) can no longer record anything


def test_a_waiting_job_whose_timer_was_lost_is_queued_again(
    api: httpx.Client, engine: Engine, redis_client: redis.Redis
) -> None:
    job_id = submit(api)
    drop_message(redis_client, job_id)
    with engine.begin() as conn:  # set aside, and its entry in the delayed set lost
        conn.execute(
            text(
                "UPDATE jobs SET status = 'waiting', not_before = now() - interval '10 seconds' "
                "WHERE id = :id"
            ),
            {"id": job_id},
        )
    wait_until(lambda: len(messages_for(redis_client, job_id)) == 1, timeout=15)
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT status FROM jobs WHERE id = :id"), {"id": job_id}
            ).scalar_one()
            == "queued"
        )
