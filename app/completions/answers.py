"""A finished chat job as OpenAI's ``text_completion``, whole or as its stream of chunks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from app.chat.answers import completion
from app.completions.schemas import FinishReason, TextChoice, TextCompletion
from app.db.tables import JobRow

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


def chunks(answer: TextCompletion, *, include_usage: bool) -> Iterator[bytes]:
    """The whole answer as OpenAI's ``text_completion`` SSE chunks: the text (the job has
    already ended: deltas are not relayed as the provider produces them), the finish
    reason, the usage chunk if asked for, then ``[DONE]``."""
    choice = answer.choices[0]
    base = {
        "id": answer.id,
        "object": "text_completion",
        "created": answer.created,
        "model": answer.model,
        "system_fingerprint": None,
    }

    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return b"data: " + orjson.dumps({**base, "choices": choices, **extra}) + b"\n\n"

    def text(piece: str, finish: str | None) -> dict[str, Any]:
        return {"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}

    if choice.text:
        yield event([text(choice.text, None)])
    yield event([text("", choice.finish_reason)])
    if include_usage and answer.usage is not None:
        yield event([], usage=answer.usage.model_dump(mode="json"))
    yield b"data: [DONE]\n\n"
