"""A finished chat job as OpenAI's ``text_completion``, whole or as its stream of chunks."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.responses import StreamingResponse
from starlette.responses import Response

from app.chat.answers import SSE_HEADERS, completion, job_headers, not_succeeded
from app.chat.chunks import TextChunkWriter, served
from app.chat.live import Shape
from app.completions.schemas import FinishReason, TextChoice, TextCompletion
from app.db.tables import JobRow
from app.providers.types import Delta, TextDelta

COMPLETION_PREFIX = "cmpl-"


def finish_reason(reason: str | None) -> FinishReason:
    """The chat answer's OpenAI finish reason as one of this endpoint's three."""
    if reason == "length":
        return "length"
    if reason == "content_filter":
        return "content_filter"
    return "stop"


def text_completion(job: JobRow) -> TextCompletion:
    """A succeeded chat job as a ``text_completion``; ``model`` is the model that answered."""
    chat = completion(job)
    choice = chat.choices[0]
    return TextCompletion(
        id=COMPLETION_PREFIX + job.id,
        created=chat.created,
        model=chat.model,
        choices=[
            TextChoice(
                text=choice.message.content or "",
                finish_reason=finish_reason(choice.finish_reason),
            )
        ],
        usage=chat.usage,
    )


def chunks(answer: TextCompletion, *, include_usage: bool, job: JobRow) -> Iterator[bytes]:
    """The whole answer as OpenAI's ``text_completion`` chunks: the text in one, the finish
    reason, the usage chunk if asked for, then ``[DONE]``; ``x_switchboard`` (``job``'s id,
    model and exact cost) rides on the last chunk, as on the chat endpoint's."""
    choice = answer.choices[0]
    usage = answer.usage.model_dump(mode="json") if include_usage and answer.usage else None
    writer = TextChunkWriter(answer.id, answer.created, answer.model)
    deltas: list[Delta] = [TextDelta(choice.text)] if choice.text else []
    return writer.whole(deltas, choice.finish_reason, usage, served(job))


def streamed(job: JobRow, include_usage: bool) -> Response:
    """The streaming response to a job that has ended: its answer as chunks, or OpenAI's
    error as without streaming — every ``x-switchboard-*`` header included."""
    if job.status != "succeeded":
        return not_succeeded(job)
    return StreamingResponse(
        chunks(text_completion(job), include_usage=include_usage, job=job),
        media_type="text/event-stream",
        headers=job_headers(job) | SSE_HEADERS,
    )


# How app.chat.live answers a text completion, whole or as the provider produces it.
TEXT = Shape(COMPLETION_PREFIX, text_completion, TextChunkWriter, streamed)
