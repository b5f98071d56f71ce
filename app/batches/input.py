"""Reading a batch's requests from JSON or JSONL, with errors that name the line or field."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from app.errors import BatchTooLarge, InvalidInput
from app.jobs.schemas import BatchItem, BatchLine, ChatParams


@dataclass(frozen=True, slots=True)
class BatchRequest:
    params: ChatParams
    custom_id: str | None
    metadata: dict[str, str] | None


def validation_error(
    err: ValidationError, *, prefix: str = "", line: int | None = None
) -> InvalidInput:
    """The first problem pydantic found, as one error naming the field (and line)."""
    first = err.errors(include_url=False)[0]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
    param = (prefix + loc).lstrip(".") or None
    message = str(first["msg"]).removeprefix("Value error, ")
    where = f"line {line}: " if line is not None else ""
    field = f"`{param}`: " if param else ""
    return InvalidInput(f"{where}{field}{message}", code="invalid_request", param=param, line=line)


def parse_item(raw: Any, *, prefix: str, line: int | None) -> BatchRequest:
    """One batch request: an OpenAI batch line (``body``) or Switchboard's flat shape."""
    model: type[BaseModel] = BatchLine if isinstance(raw, dict) and "body" in raw else BatchItem
    try:
        parsed = model.model_validate(raw)
    except ValidationError as err:
        raise validation_error(err, prefix=prefix, line=line) from None
    if isinstance(parsed, BatchLine):
        return BatchRequest(parsed.body, parsed.custom_id, None)
    assert isinstance(parsed, BatchItem)
    return BatchRequest(parsed, parsed.custom_id, parsed.metadata)


def parse_requests(items: list[Any], *, limit: int) -> list[BatchRequest]:
    """The ``requests`` array of a JSON batch."""
    _check_size(len(items), limit)
    parsed = [parse_item(raw, prefix=f"requests[{i}]", line=None) for i, raw in enumerate(items)]
    _check_unique(parsed, [f"requests[{i}].custom_id" for i in range(len(parsed))], None)
    return parsed


def parse_jsonl(body: bytes, *, limit: int) -> list[BatchRequest]:
    """A JSONL batch: one request per line; blank lines are ignored."""
    numbered = [(n, line) for n, line in enumerate(body.split(b"\n"), start=1) if line.strip()]
    if not numbered:
        raise InvalidInput("the batch has no requests", code="empty_batch")
    _check_size(len(numbered), limit)
    parsed: list[BatchRequest] = []
    for n, line in numbered:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(
                f"line {n}: not valid UTF-8", code="invalid_encoding", line=n
            ) from None
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError as err:
            raise InvalidInput(
                f"line {n}: not valid JSON ({err})", code="invalid_json", line=n
            ) from None
        parsed.append(parse_item(raw, prefix="", line=n))
    _check_unique(parsed, ["custom_id"] * len(parsed), [n for n, _ in numbered])
    return parsed


def _check_size(count: int, limit: int) -> None:
    if count > limit:
        raise BatchTooLarge(
            f"a batch holds at most {limit} requests; this one has {count}", param="requests"
        )
    if count == 0:
        raise InvalidInput("the batch has no requests", code="empty_batch", param="requests")


def _check_unique(
    parsed: list[BatchRequest], params: list[str], lines: Iterable[int] | None
) -> None:
    seen: set[str] = set()
    line_list = list(lines) if lines is not None else [None] * len(parsed)
    for request, param, line in zip(parsed, params, line_list, strict=True):
        if request.custom_id is None:
            continue
        if request.custom_id in seen:
            where = f"line {line}: " if line is not None else f"`{param}`: "
            raise InvalidInput(
                f"{where}custom_id {request.custom_id!r} appears more than once in the batch",
                code="duplicate_custom_id",
                param=param,
                line=line,
            )
        seen.add(request.custom_id)
