"""Reading batch lines: every kind of bad line gets its own code, its field and its line."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.batches.input import numbered_lines, parse_jsonl, read_lines
from app.errors import InvalidInput

CHAT = "/v1/chat/completions"


def line(custom_id: str | None = "r", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "method": "POST",
        "url": CHAT,
        "body": {"model": "sim-gpt-mini", "messages": [{"role": "user", "content": "hi"}]},
    }
    if custom_id is not None:
        body["custom_id"] = custom_id
    body.update(overrides)
    return body


def read(*raw: bytes) -> tuple[list[str | None], list[tuple[str, str | None, int | None]]]:
    lines = list(numbered_lines([b"\n".join(raw)]))
    got = read_lines(lines, count=len(lines), limit=100, endpoint=CHAT, collect=True)
    return (
        [r.custom_id for r in got.requests],
        [(e.code, e.param, e.line) for e in got.errors],
    )


def test_every_bad_line_is_reported_with_its_code_field_and_line() -> None:
    body = {"model": "sim-gpt-mini", "messages": [{"role": "user", "content": "hi"}]}
    ok, errors = read(
        orjson.dumps(line("a")),
        b"{not json",
        orjson.dumps(line(None)),
        orjson.dumps(line("a")),
        orjson.dumps(line("m", method="GET")),
        orjson.dumps(line("u", url={"not": "a string"})),
        orjson.dumps(line("e", url="/v1/embeddings")),
        orjson.dumps(line("b", body={**body, "max_tokens": -1})),
        orjson.dumps(line("s", body={**body, "stream": True})),
        orjson.dumps(line("x", extra=1)),
        b"[1, 2]",
        b"\xff\xfe",
        orjson.dumps(line("z")),
    )
    assert ok == ["a", "z"]
    assert errors == [
        ("invalid_json", None, 2),
        ("missing_custom_id", "custom_id", 3),
        ("duplicate_custom_id", "custom_id", 4),
        ("invalid_method", "method", 5),
        ("invalid_url", "url", 6),
        ("endpoint_mismatch", "url", 7),
        ("invalid_request", "body.max_tokens", 8),
        ("invalid_request", "body.stream", 9),
        ("invalid_request", "extra", 10),
        ("invalid_request", None, 11),
        ("invalid_encoding", None, 12),
    ]


def test_an_openai_body_takes_what_the_chat_endpoint_takes() -> None:
    body = {
        "model": "sim-gpt-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 12,
        "metadata": {"team": "evals"},
        "n": 1,
    }
    got = parse_jsonl(orjson.dumps(line("a", body=body)), limit=10, endpoint=CHAT)
    (request,) = got.requests
    assert request.params.max_tokens == 12
    assert request.metadata == {"team": "evals"}
    assert request.where == "body"


def test_blank_lines_are_skipped_but_keep_the_numbering() -> None:
    text = orjson.dumps(line("a")) + b"\n\n   \n" + orjson.dumps(line("b")) + b"\n"
    got = parse_jsonl(text, limit=10, endpoint=CHAT)
    assert got.lines == [1, 4]


def test_lines_split_across_chunks_are_read_whole() -> None:
    text = b"\n".join(orjson.dumps(line(f"r{i}")) for i in range(20))
    pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
    assert [n for n, _ in numbered_lines(pieces)] == list(range(1, 21))
    assert b"".join(piece for _, piece in numbered_lines(pieces)) == text.replace(b"\n", b"")


def test_inline_sources_stop_at_the_first_bad_line() -> None:
    text = b"\n".join([orjson.dumps(line("a")), b"{oops", orjson.dumps(line("a"))])
    with pytest.raises(InvalidInput) as raised:
        parse_jsonl(text, limit=10, endpoint=CHAT)
    assert (raised.value.code, raised.value.line) == ("invalid_json", 2)
    assert raised.value.message.startswith("line 2: ")
