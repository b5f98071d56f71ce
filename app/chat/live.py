"""``stream: true`` answered live: a job's deltas relayed as OpenAI chunks while it runs.

The request's job streams (``StreamedJob``): the worker makes each call streaming and
publishes its attempt's events to the job's Redis stream (``app.relay``); this module reads
them from the start and writes OpenAI's chunks (``app.chat.chunks``) in the endpoint's
``Shape``: ``chat.completion.chunk`` for ``/v1/chat/completions``, ``text_completion`` for
``/v1/completions``. What the client gets:

- **Nothing until the first delta of an attempt.** Until then a failed attempt — an error
  status, a stream that broke before any content, a retry, a fallback to another model — is
  invisible: the client gets the stream of the attempt that delivers, the fallback model's.
  The 200's headers then name the job (``x-switchboard-job-id``), the model and provider
  answering; the chunks' ``model`` is that model.
- **A job that ends before any delta** (it failed, was cancelled, or its answer carried no
  content) is answered as ``stream: false`` would be: the same error status and body, or the
  whole answer as chunks, with every ``x-switchboard-*`` header, cost included.
- **Once content has been relayed, the stream is that attempt's alone.** Should it fail
  part-way (an error event inside the provider's stream, a dropped connection, a timeout,
  its worker gone), the stream ends with OpenAI's error event — ``data: {"error": {...}}``
  with ``code: "stream_interrupted"`` and the ``job_id`` — and no ``[DONE]``; the ``openai``
  SDK raises ``APIError``. Nothing of another attempt is ever spliced onto what was sent.
  The job itself goes on by the decision table (retry, fall back) and ``GET /v1/jobs/{id}``
  serves its result.
- **The end waits for the ledger.** When the relayed attempt finished, the finish chunk is
  sent once the job's row says the answer is recorded: the finish reason, the usage chunk
  (with ``stream_options.include_usage``), ``x_switchboard`` on the last chunk with the job's
  exact cost (no header can carry what is known only at the end), then ``[DONE]``. An answer
  recorded from another attempt than the one relayed (a lease that expired mid-stream) ends
  the stream with the error event instead.
- **A client that hangs up stops only the relay**: the job runs on and is recorded once.
- **The wait is bounded** by ``chat_wait_timeout_s`` (or ``x-switchboard-wait-s``): a 504
  ``wait_timeout`` before the first delta, as without streaming; the error event after it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response

from app.api.state import ApiState
from app.chat.answers import (
    COMPLETION_PREFIX,
    SSE_HEADERS,
    WAIT_TIMEOUT,
    completion,
    ended,
    error_body,
    failure,
    wait_timeout,
)
from app.chat.chunks import ChunkWriter, event, served
from app.chat.schemas import ChatCompletion
from app.chat.waiting import FIRST_PAUSE_S, GROWTH, MAX_PAUSE_S, ended_job, job_end
from app.completions.schemas import TextCompletion
from app.db.tables import JobRow
from app.jobs.answered import submit_and_wait, submit_awaited, wait_for, wait_limit
from app.jobs.schemas import JobCreate
from app.jobs.submission import JobSubmitter
from app.providers.types import Delta, TextDelta
from app.relay.events import (
    AttemptDeltas,
    AttemptDone,
    AttemptFailed,
    AttemptId,
    AttemptStarted,
    Event,
    JobEnded,
)
from app.relay.subscriber import Subscription

INTERRUPTED = "stream_interrupted"
# Once the relayed attempt is done, how long its record may take beyond the caller's wait.
RECORD_GRACE_S = 5.0
MIN_READ_S = 0.001

Abandoned = Callable[[], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Shape:
    """The endpoint's kind of answer: a recorded job as its whole answer (``answer``), its
    chunks (``writer``, their ids ``prefix`` + the job id), and the streaming response to a
    job that ended before any delta (``whole``)."""

    prefix: str
    answer: Callable[[JobRow], ChatCompletion | TextCompletion]
    writer: type[ChunkWriter]
    whole: Callable[[JobRow, bool], Response]  # (job, include_usage)


def _chat_whole(job: JobRow, include_usage: bool) -> Response:
    return ended(job, stream=True, include_usage=include_usage)


CHAT = Shape(COMPLETION_PREFIX, completion, ChunkWriter, _chat_whole)


async def answer_on_request(
    request: Request,
    submitter: JobSubmitter,
    state: ApiState,
    spec: JobCreate,
    idempotency_key: str | None,
    wait_s: float | None,
    *,
    stream: bool,
    include_usage: bool,
    shape: Shape = CHAT,
) -> Response:
    """Submit ``spec`` and answer on the same request in ``shape``: the whole answer once the
    job ended; with ``stream`` (a job whose call streams), its deltas relayed live — or, with
    no relay configured, the whole answer as chunks once it ended. A job that did not
    succeed is OpenAI's error either way."""
    if not stream:
        answered = await submit_and_wait(request, submitter, state, spec, idempotency_key, wait_s)
        if isinstance(answered, Response):
            return answered
        body = shape.answer(answered.job).model_dump(mode="json")
        return JSONResponse(body, headers=answered.headers)
    accepted = await submit_awaited(submitter, state, spec, idempotency_key)
    waited_s = wait_limit(state, wait_s)
    if state.streams is not None:
        return await live_answer(
            state.sessions,
            state.streams.subscribe(accepted.id),
            accepted.id,
            include_usage=include_usage,
            wait_s=waited_s,
            abandoned=request.is_disconnected,
            shape=shape,
        )
    job = await wait_for(request, state, accepted.id, waited_s)
    return wait_timeout(accepted.id, waited_s) if job is None else shape.whole(job, include_usage)


async def live_answer(
    sessions: sessionmaker[Session],
    subscription: Subscription,
    job_id: str,
    *,
    include_usage: bool,
    wait_s: float,
    abandoned: Abandoned,
    shape: Shape = CHAT,
) -> Response:
    """The streaming answer to job ``job_id``, relayed from ``subscription`` as it comes, in
    ``shape``'s chunks; ``sessions`` read the job's row, ``abandoned`` says when the client
    has hung up."""
    live = _Live(sessions, subscription, job_id, include_usage, wait_s, abandoned, shape)
    return await live.answer()


@dataclass
class _Sent:
    """What the client has been sent of the attempt it follows, added up as a client does."""

    attempt: AttemptId
    text: list[str] = field(default_factory=list)
    calls: dict[int, list[str]] = field(default_factory=dict)  # index -> [id, name, arguments]

    def add(self, deltas: Iterable[Delta]) -> None:
        for delta in deltas:
            if isinstance(delta, TextDelta):
                self.text.append(delta.text)
                continue
            call = self.calls.setdefault(delta.index, ["", "", ""])
            call[0] = call[0] or delta.id or ""
            call[1] = call[1] or delta.name or ""
            call[2] += delta.arguments

    def is_answer_of(self, job: JobRow) -> bool:
        """The job's recorded answer is exactly what was sent."""
        result = job.result or {}
        recorded = [[c["id"], c["name"], c["arguments"]] for c in result.get("tool_calls", [])]
        sent_calls = [self.calls[index] for index in sorted(self.calls)]
        return "".join(self.text) == (result.get("text") or "") and sent_calls == recorded


class _Finished:
    """The followed attempt finished its answer (it is still to be recorded)."""


_FINISHED = _Finished()


class _Live:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        subscription: Subscription,
        job_id: str,
        include_usage: bool,
        wait_s: float,
        abandoned: Abandoned,
        shape: Shape,
    ) -> None:
        self._shape = shape
        self._sessions = sessions
        self._events = subscription
        self._job_id = job_id
        self._include_usage = include_usage
        self._wait_s = wait_s
        self._deadline = time.monotonic() + wait_s
        self._abandoned = abandoned
        self._created = int(time.time())

    # -- before the first delta: nothing sent yet ------------------------------------------

    async def answer(self) -> Response:
        """Wait for the first delta of an attempt that has not failed, or for the job's end."""
        started: dict[AttemptId, AttemptStarted] = {}
        failed: set[AttemptId] = set()
        pause = FIRST_PAUSE_S
        while True:
            events = await self._events.read(max(min(pause, self._left()), MIN_READ_S))
            # An attempt that failed within what was read is skipped whole: even a late
            # reader never starts relaying an attempt it already knows is over.
            failed |= {e.attempt for e in events if isinstance(e, AttemptFailed)}
            for position, item in enumerate(events):
                if isinstance(item, AttemptStarted):
                    started[item.attempt] = item
                elif (
                    isinstance(item, AttemptDeltas)
                    and item.attempt not in failed
                    and item.attempt in started
                ):
                    return self._relay(started[item.attempt], events[position:])
            attempt_over = any(
                isinstance(e, AttemptDone | AttemptFailed | JobEnded) for e in events
            )
            if not events or attempt_over:
                job = await ended_job(self._sessions, self._job_id)
                if job is not None:
                    return self._shape.whole(job, self._include_usage)
            if self._left() <= 0 or await self._abandoned():
                return wait_timeout(self._job_id, self._wait_s)
            pause = FIRST_PAUSE_S if attempt_over else min(pause * GROWTH, MAX_PAUSE_S)

    def _relay(self, start: AttemptStarted, events: list[Event]) -> Response:
        writer = self._shape.writer(self._shape.prefix + self._job_id, self._created, start.model)
        headers = {
            "x-switchboard-job-id": self._job_id,
            "x-switchboard-model": start.model,
            "x-switchboard-provider": start.provider,
            **SSE_HEADERS,
        }
        body = self._body(_Sent(start.attempt), writer, events)
        return StreamingResponse(body, media_type="text/event-stream", headers=headers)

    # -- after it: one attempt's stream, to its end ----------------------------------------

    async def _body(
        self, sent: _Sent, writer: ChunkWriter, events: list[Event]
    ) -> AsyncIterator[bytes]:
        chunk, end = self._follow(sent, writer, events)
        yield writer.role() + chunk
        while end is None:
            events = await self._events.read(max(min(MAX_PAUSE_S, self._left()), MIN_READ_S))
            chunk, end = self._follow(sent, writer, events)
            if chunk:
                yield chunk
            if end is not None or events:
                continue
            job = await ended_job(self._sessions, self._job_id)
            if job is not None:  # it ended without a word from the attempt (Redis failed?)
                yield self._ending(sent, writer, job)
                return
            if self._left() <= 0:
                yield self._wait_ran_out()
                return
            if await self._abandoned():
                return
        if isinstance(end, bytes):
            yield end
            return
        job = await job_end(
            self._sessions,
            self._job_id,
            timeout_s=max(self._left(), RECORD_GRACE_S),
            abandoned=self._abandoned,
            events=self._events,
        )
        yield self._wait_ran_out() if job is None else self._ending(sent, writer, job)

    def _follow(
        self, sent: _Sent, writer: ChunkWriter, events: list[Event]
    ) -> tuple[bytes, bytes | _Finished | None]:
        """The chunks of the followed attempt's deltas in ``events``, and how it ended:
        ``_FINISHED``, the error event to end with, or ``None`` (still going)."""
        out: list[bytes] = []
        for item in events:
            if item.attempt != sent.attempt:
                why = f"attempt {sent.attempt.number} stopped before it finished"
                return b"".join(out), self._interrupted(why)
            if isinstance(item, AttemptDeltas):
                sent.add(item.deltas)
                out.append(writer.deltas(item.deltas))
            elif isinstance(item, AttemptFailed):
                why = f"attempt {sent.attempt.number} failed: {item.error_class}: {item.message}"
                return b"".join(out), self._interrupted(why)
            elif isinstance(item, AttemptDone):
                return b"".join(out), _FINISHED
        return b"".join(out), None

    def _ending(self, sent: _Sent, writer: ChunkWriter, job: JobRow) -> bytes:
        """The last chunks once the job has ended: its finish, or why the stream cannot."""
        if job.status != "succeeded":
            return event(failure(job)[1])
        if not sent.is_answer_of(job):
            return self._interrupted("the job's answer was recorded from another attempt")
        answer = self._shape.answer(job)
        reason, usage = answer.choices[0].finish_reason, answer.usage
        shown = usage.model_dump(mode="json") if usage is not None and self._include_usage else None
        return b"".join(writer.end(reason, shown, served(job)))

    def _interrupted(self, why: str) -> bytes:
        job_id = self._job_id
        message = (
            f"job {job_id}: the stream broke off after its answer began ({why}); the job goes "
            f"on and its result will be at GET /v1/jobs/{job_id}"
        )
        return event(error_body(message, "api_error", INTERRUPTED, job_id=job_id))

    def _wait_ran_out(self) -> bytes:
        job_id = self._job_id
        message = (
            f"job {job_id} has not ended after {self._wait_s:g}s; it keeps running: "
            f"poll GET /v1/jobs/{job_id}"
        )
        return event(error_body(message, "api_error", WAIT_TIMEOUT, job_id=job_id))

    def _left(self) -> float:
        return self._deadline - time.monotonic()
