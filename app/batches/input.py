"""Reading a batch's requests — a JSON array, a JSONL body or an uploaded file — with errors
that name the line or field.

Every source is read by the same code: a request is an OpenAI batch line (``custom_id``,
``method``, ``url``, ``body``; the body checked by the batch endpoint's own schema, see
``kinds``) or Switchboard's flat shape (the endpoint's body plus ``custom_id``; for chat also
``prompt``, ``strategy``...). Inline sources stop at the first problem (a 400); a file's problems
are all collected, as OpenAI reports them on the failed batch. A batch too large (requests, or
an embeddings batch's inputs) is refused whole (a 413), whatever its source.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from app.batches.kinds import OPENAI_ENDPOINTS, EndpointKind, LineRequest, endpoint_kind
from app.errors import BatchTooLarge, InvalidInput
from app.jobs.schemas import CustomId, RoutedRequest, StorableRequest


@dataclass(frozen=True, slots=True)
class BatchRequest:
    params: RoutedRequest
    custom_id: str | None
    metadata: dict[str, str] | None
    where: str = ""  # the prefix that names this request's body fields in errors


@dataclass(slots=True)
class BatchInput:
    """A batch's requests as read, the line each came from, and what could not be read."""

    requests: list[BatchRequest] = field(default_factory=list)
    lines: list[int] | None = None
    errors: list[InvalidInput] = field(default_factory=list)


def validation_error(
    err: ValidationError, *, prefix: str = "", line: int | None = None
) -> InvalidInput:
    """The first problem pydantic found, as one error naming the field (and line)."""
    first = err.errors(include_url=False)[0]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
    param = (prefix + loc).lstrip(".") or None
    message = str(first["msg"]).removeprefix("Value error, ")
    return at_line(InvalidInput(message, code="invalid_request", param=param), line)


def at_line(err: InvalidInput, line: int | None) -> InvalidInput:
    """``err`` with its line (and field) named at the start of its message."""
    field_name = f"`{err.param}`: " if err.param and f"`{err.param}`" not in err.message else ""
    where = f"line {line}: " if line is not None else ""
    err.message = f"{where}{field_name}{err.message}"
    err.args = (err.message,)
    err.line = line
    return err


class _Envelope(StorableRequest):
    custom_id: CustomId
    method: str
    url: str
    body: dict[str, Any]


class _FlatId(StorableRequest):
    custom_id: CustomId | None = None


def parse_item(raw: Any, *, prefix: str, line: int | None, endpoint: str) -> BatchRequest:
    """One batch request: an OpenAI batch line (``body``) or Switchboard's flat shape."""
    if isinstance(raw, dict) and ({"body", "url", "method"} & raw.keys()):
        return _openai_line(raw, prefix, line, endpoint)
    if not isinstance(raw, dict):
        raise at_line(InvalidInput("a request must be a JSON object", param=prefix or None), line)
    kind = endpoint_kind(endpoint)
    try:
        if kind.flat is not None:
            parsed = kind.flat.model_validate(raw)
            return BatchRequest(parsed, parsed.custom_id, parsed.metadata, prefix)
        named = _FlatId.model_validate({"custom_id": raw.get("custom_id")})
    except ValidationError as err:
        raise validation_error(err, prefix=prefix, line=line) from None
    body = {k: v for k, v in raw.items() if k != "custom_id"}
    request = _job_request(kind, body, prefix, line)
    return BatchRequest(request.params, named.custom_id, request.metadata, prefix)


def _job_request(kind: EndpointKind, body: Any, where: str, line: int | None) -> LineRequest:
    """A body checked by the endpoint's own schema, as the job request it becomes."""
    try:
        return kind.request(kind.body.model_validate(body))
    except ValidationError as err:
        raise validation_error(err, prefix=where, line=line) from None
    except InvalidInput as err:
        err.param = joined(where, err.param) if err.param else where or None
        raise at_line(err, line) from None


def _openai_line(raw: dict[str, Any], prefix: str, line: int | None, endpoint: str) -> BatchRequest:
    def fail(message: str, code: str, name: str) -> InvalidInput:
        return at_line(InvalidInput(message, code=code, param=joined(prefix, name)), line)

    if raw.get("custom_id") in (None, ""):
        raise fail("every request needs a custom_id", "missing_custom_id", "custom_id")
    method, url = raw.get("method"), raw.get("url")
    if method != "POST":
        raise fail(f"method must be 'POST', not {method!r}", "invalid_method", "method")
    if not isinstance(url, str) or url not in OPENAI_ENDPOINTS:
        raise fail(f"url {url!r} is not an endpoint batches can call", "invalid_url", "url")
    if url != endpoint:
        raise fail(
            f"url {url!r} is not the batch's endpoint {endpoint!r}", "endpoint_mismatch", "url"
        )
    try:
        envelope = _Envelope.model_validate(raw)
    except ValidationError as err:
        raise validation_error(err, prefix=prefix, line=line) from None
    where = joined(prefix, "body")
    request = _job_request(endpoint_kind(endpoint), envelope.body, where, line)
    return BatchRequest(request.params, envelope.custom_id, request.metadata, where)


def parse_requests(items: list[Any], *, limit: int, endpoint: str) -> BatchInput:
    """The ``requests`` array of a JSON batch; the first bad request is raised."""
    _check_size(len(items), limit)
    read = BatchInput()
    seen: set[str] = set()
    for i, raw in enumerate(items):
        request = parse_item(raw, prefix=f"requests[{i}]", line=None, endpoint=endpoint)
        _check_unique(request, seen, f"requests[{i}].custom_id", None)
        read.requests.append(request)
    _check_inputs(read, endpoint)
    return read


def numbered_lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """The non-blank lines of a body given in pieces, with their 1-based line numbers."""
    number, rest = 0, b""
    for chunk in chunks:
        pieces = (rest + chunk).split(b"\n")
        rest = pieces.pop()
        for piece in pieces:
            number += 1
            if piece.strip():
                yield number, piece
    if rest.strip():
        yield number + 1, rest


def read_lines(
    numbered: Iterable[tuple[int, bytes]],
    *,
    count: int,
    limit: int,
    endpoint: str,
    collect: bool = False,
) -> BatchInput:
    """A JSONL batch of ``count`` non-blank lines: one request per line. Without ``collect``
    the first bad line is raised; with it every bad line is kept in ``errors`` (in order)."""
    _check_size(count, limit)
    read = BatchInput(lines=[])
    assert read.lines is not None
    seen: set[str] = set()
    for n, line in numbered:
        try:
            request = _line(n, line, endpoint)
            _check_unique(request, seen, "custom_id", n)
        except InvalidInput as err:
            if not collect:
                raise
            read.errors.append(err)
            continue
        read.requests.append(request)
        read.lines.append(n)
    _check_inputs(read, endpoint)
    return read


def parse_jsonl(body: bytes, *, limit: int, endpoint: str) -> BatchInput:
    """A JSONL body; the first bad line is raised."""
    numbered = list(numbered_lines([body]))
    return read_lines(numbered, count=len(numbered), limit=limit, endpoint=endpoint)


def joined(prefix: str, name: str) -> str:
    """A field's name under ``prefix`` (``requests[2]`` + ``model``: ``requests[2].model``)."""
    return f"{prefix}.{name}" if prefix else name


def _line(n: int, line: bytes, endpoint: str) -> BatchRequest:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"line {n}: not valid UTF-8", code="invalid_encoding", line=n) from None
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError as err:
        raise InvalidInput(
            f"line {n}: not valid JSON ({err})", code="invalid_json", line=n
        ) from None
    return parse_item(raw, prefix="", line=n, endpoint=endpoint)


def _check_size(count: int, limit: int) -> None:
    if count > limit:
        raise BatchTooLarge(
            f"a batch holds at most {limit} requests; this one has {count}", param="requests"
        )
    if count == 0:
        raise InvalidInput("the batch has no requests", code="empty_batch", param="requests")


def _check_inputs(read: BatchInput, endpoint: str) -> None:
    """The endpoint's limit on inputs across the batch (embeddings: OpenAI's 50,000)."""
    kind = endpoint_kind(endpoint)
    if kind.max_inputs is None:
        return
    total = sum(kind.inputs(request.params) for request in read.requests)
    if total > kind.max_inputs:
        raise BatchTooLarge(
            f"a {endpoint} batch holds at most {kind.max_inputs:,} inputs across its requests; "
            f"this one has {total:,}",
            param="requests",
        )


def _check_unique(request: BatchRequest, seen: set[str], param: str, line: int | None) -> None:
    if request.custom_id is None:
        return
    if request.custom_id in seen:
        where = f"line {line}: " if line is not None else f"`{param}`: "
        raise InvalidInput(
            f"{where}custom_id {request.custom_id!r} appears more than once in the batch",
            code="duplicate_custom_id",
            param=param,
            line=line,
        )
    seen.add(request.custom_id)
