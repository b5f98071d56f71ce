"""The live relay's rules, on real Postgres and Redis with events written by hand: what a
reader does with failed attempts, a second worker's attempt, and answers recorded otherwise.

Each job is real (submitted, then claimed here so that no worker takes it); its events are
what a worker would append to its stream, and its end is recorded through the ledger.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
import redis
from sqlalchemy import Engine
from starlette.responses import JSONResponse, StreamingResponse

from app.chat.live import live_answer
from app.config import Settings
from app.db.engine import make_sessionmaker, unit_of_work
from app.db.raw import autocommit
from app.jobs.claims import Claim, claim_job
from app.jobs.schemas import JobCreate
from app.jobs.service import submit_job
from app.ledger.record import AttemptRecord, Failed, Succeeded, record
from app.providers import TextDelta
from app.registry.service import load_registry
from app.relay.events import (
    FIELD,
    AttemptDeltas,
    AttemptDone,
    AttemptFailed,
    AttemptId,
    AttemptStarted,
    Event,
    encode,
    stream_key,
)
from app.relay.subscriber import StreamSubscriber

FIRST, SECOND = AttemptId(1, 1), AttemptId(1, 2)


class Job:
    """A job of this test's own: claimed at once, its events and end written by hand."""

    def __init__(self, engine: Engine, client: redis.Redis) -> None:
        self.engine, self.redis = engine, client
        with unit_of_work(make_sessionmaker(engine)) as session:
            spec = JobCreate.model_validate({"model": "sim-gpt-mini", "prompt": "hi"})
            self.id = submit_job(
                session, spec, load_registry(session), default_deadline_s=60
            ).job.id
        with autocommit(engine) as conn:
            claim = claim_job(conn, self.id, lease_s=120)
        assert claim is not None
        self.claim: Claim = claim

    def publish(self, *events: Event) -> None:
        for event in events:
            self.redis.xadd(stream_key(self.id), {FIELD: encode(event)})

    def succeed(self, text: str) -> None:
        self._end(
            Succeeded(
                {"text": text, "finish_reason": "stop", "tool_calls": []},
                "sim-gpt-mini",
                "sim-openai",
                0,
                5,
            ),
            error=None,
        )

    def fail(self, error_class: str) -> None:
        self._end(Failed(error_class, "too long"), error=error_class)

    def _end(self, outcome: Succeeded | Failed, error: str | None) -> None:
        now = datetime.now(UTC)
        attempt = AttemptRecord(
            model_id="sim-gpt-mini",
            provider="sim-openai",
            started_at=now,
            finished_at=now,
            latency_ms=5,
            decision="succeeded" if error is None else "fail",
            error_class=error,
            input_tokens=None if error else 3,
            output_tokens=None if error else 2,
            cost_usd=None if error else Decimal("0.000004"),
        )
        with autocommit(self.engine) as conn:
            recorded = record(conn, self.id, outcome, attempt=attempt, claim_token=self.claim.token)
        assert recorded.moved


@pytest.fixture
def job(engine: Engine, redis_client: redis.Redis) -> Job:
    return Job(engine, redis_client)


def answer(engine: Engine, redis_url: str | None, job: Job, *, wait_s: float = 10.0) -> Any:
    """What the client gets: ``(status, headers, [SSE data payloads])`` or a JSON error."""

    async def never() -> bool:
        return False

    async def run() -> Any:
        assert redis_url is not None
        subscriber = StreamSubscriber.from_url(redis_url)
        try:
            response = await live_answer(
                make_sessionmaker(engine),
                subscriber.subscribe(job.id),
                job.id,
                include_usage=True,
                wait_s=wait_s,
                abandoned=never,
            )
            if isinstance(response, JSONResponse):
                return response.status_code, orjson.loads(bytes(response.body))
            assert isinstance(response, StreamingResponse)
            body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[misc]
            events = [line[6:] for line in body.decode().split("\n") if line.startswith("data: ")]
            data = [e if e == "[DONE]" else orjson.loads(e) for e in events]
            return response.status_code, dict(response.headers), data
        finally:
            await subscriber.close()

    return asyncio.run(run())


def text_of(data: list[Any]) -> str:
    return "".join(
        d["choices"][0]["delta"].get("content") or ""
        for d in data
        if isinstance(d, dict) and d.get("choices")
    )


def start(attempt: AttemptId, model: str = "sim-gpt-mini") -> AttemptStarted:
    return AttemptStarted(attempt, model, "sim-openai")


def text(attempt: AttemptId, *pieces: str) -> AttemptDeltas:
    return AttemptDeltas(attempt, tuple(TextDelta(piece) for piece in pieces))


def test_a_late_reader_skips_an_attempt_it_already_knows_failed(
    job: Job, engine: Engine, settings: Settings
) -> None:
    job.publish(start(FIRST), text(FIRST, "Hel"), AttemptFailed(FIRST, "overloaded", "busy"))
    job.publish(
        start(SECOND, "sim-gpt-large"), text(SECOND, "Hello", " there"), AttemptDone(SECOND)
    )
    job.succeed("Hello there")
    status, headers, data = answer(engine, settings.redis_url, job)

    assert status == 200
    assert headers["x-switchboard-model"] == "sim-gpt-large"
    assert text_of(data) == "Hello there"  # nothing of the failed attempt
    assert data[-1] == "[DONE]"
    assert data[-2]["usage"]["completion_tokens"] == 2
    assert data[-2]["x_switchboard"]["cost_usd"] == "0.000004"


def test_another_workers_attempt_after_the_first_delta_ends_the_stream(
    job: Job, engine: Engine, settings: Settings
) -> None:
    # The first worker lost its lease mid-stream; a second claim's attempt, same number.
    other = AttemptId(claim=2, number=1)
    job.publish(start(FIRST), text(FIRST, "Par"), start(other), text(other, "Other"))
    _, _, data = answer(engine, settings.redis_url, job, wait_s=2)

    assert text_of(data) == "Par"
    error = data[-1]["error"]
    assert (error["code"], error["job_id"]) == ("stream_interrupted", job.id)
    assert "[DONE]" not in data


def test_an_answer_recorded_from_another_attempt_is_not_passed_off_as_the_relayed_one(
    job: Job, engine: Engine, settings: Settings
) -> None:
    job.publish(start(FIRST), text(FIRST, "Hel"), AttemptDone(FIRST))
    job.succeed("Something else")
    _, _, data = answer(engine, settings.redis_url, job)

    assert text_of(data) == "Hel"
    assert data[-1]["error"]["code"] == "stream_interrupted"
    assert "another attempt" in data[-1]["error"]["message"]


def test_a_job_that_ends_without_a_word_from_its_attempt_still_finishes_from_its_row(
    job: Job, engine: Engine, settings: Settings
) -> None:
    # Redis failed for the worker after these: no more events, but the job was recorded.
    job.publish(start(FIRST), text(FIRST, "Hello"))
    job.succeed("Hello")
    _, _, data = answer(engine, settings.redis_url, job)

    assert text_of(data) == "Hello"
    assert data[-1] == "[DONE]"


def test_a_job_that_fails_before_any_delta_answers_with_its_error_status(
    job: Job, engine: Engine, settings: Settings
) -> None:
    job.publish(start(FIRST), AttemptFailed(FIRST, "context_length", "too long"))
    job.fail("context_length")
    status, body = answer(engine, settings.redis_url, job)

    assert status == 400
    assert (body["error"]["code"], body["error"]["job_id"]) == ("context_length_exceeded", job.id)


def test_no_delta_within_the_wait_is_a_504_naming_the_job(
    job: Job, engine: Engine, settings: Settings
) -> None:
    status, body = answer(engine, settings.redis_url, job, wait_s=0.3)
    assert status == 504
    assert (body["error"]["code"], body["error"]["job_id"]) == ("wait_timeout", job.id)
