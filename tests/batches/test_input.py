"""Reading batch lines: every kind of bad line gets its own code, its field and its line."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.batches.input import numbered_lines, parse_jsonl, parse_requests, read_lines
from app.errors import BatchTooLarge, InvalidInput

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


EMBEDDINGS, COMPLETIONS = "/v1/embeddings", "/v1/completions"


def test_an_embeddings_line_takes_what_the_embeddings_endpoint_takes() -> None:
    lines = [
        line("one", url=EMBEDDINGS, body={"model": "sim-embed-small", "input": "hello"}),
        line(
            "packed",
            url=EMBEDDINGS,
            body={
                "model": "strategy:cost",
                "input": ["a", "b"],
                "dimensions": 64,
                "encoding_format": "base64",
                "user": "u-1",
                "metadata": {"team": "search"},
            },
        ),
    ]
    got = parse_jsonl(b"\n".join(orjson.dumps(x) for x in lines), limit=10, endpoint=EMBEDDINGS)
    one, packed = got.requests
    assert (one.params.kind, one.params.capability) == ("embedding", "embeddings")
    assert one.params.to_request() == {"input": ["hello"]}
    # The encoding is kept with the job: its output line is written in it.
    assert packed.params.to_request() == {
        "input": ["a", "b"],
        "dimensions": 64,
        "encoding_format": "base64",
    }
    assert (packed.params.strategy, packed.metadata) == ("cost", {"team": "search"})


def test_a_completions_line_is_a_chat_job_of_its_prompt() -> None:
    body = {"model": "sim-gpt-mini", "prompt": "Once upon", "temperature": 0.5}
    got = parse_jsonl(
        orjson.dumps(line("c", url=COMPLETIONS, body=body)), limit=10, endpoint=COMPLETIONS
    )
    (request,) = got.requests
    assert request.params.kind == "chat"
    assert request.params.to_request() == {
        "messages": [{"role": "user", "content": "Once upon"}],
        "max_tokens": 16,  # the endpoint's own default
        "temperature": 0.5,
    }


def test_each_endpoint_refuses_a_body_its_own_route_refuses() -> None:
    embed = {"model": "sim-embed-small", "input": "x"}
    complete = {"model": "sim-gpt-mini", "prompt": "x"}
    raw = [
        line("a", url=EMBEDDINGS, body={**embed, "input": [[1, 2]]}),
        line("b", url=EMBEDDINGS, body={**embed, "encoding_format": "int8"}),
        line("c", url=EMBEDDINGS, body={**embed, "messages": []}),
        line("d", url=COMPLETIONS, body={**complete, "stream": True}),
        line("e", url=COMPLETIONS, body={**complete, "n": 2}),
        line("f", url=COMPLETIONS, body={**complete, "prompt": ["one", "two"]}),
    ]
    for endpoint, items in ((EMBEDDINGS, raw[:3]), (COMPLETIONS, raw[3:])):
        lines = list(numbered_lines([b"\n".join(orjson.dumps(x) for x in items)]))
        got = read_lines(lines, count=len(lines), limit=10, endpoint=endpoint, collect=True)
        assert got.requests == []
        errors = [(e.param, e.line) for e in got.errors]
        if endpoint == EMBEDDINGS:
            assert errors == [("body.input", 1), ("body.encoding_format", 2), ("body.messages", 3)]
        else:
            assert errors == [("body.stream", 1), ("body.n", 2), ("body.prompt", 3)]
        assert {e.code for e in got.errors} == {"invalid_request"}


def test_flat_requests_are_the_endpoints_body_beside_custom_id() -> None:
    embedded = parse_requests(
        [{"custom_id": "e", "model": "sim-embed-small", "input": ["x"], "dimensions": 8}],
        limit=10,
        endpoint=EMBEDDINGS,
    )
    (request,) = embedded.requests
    assert (request.custom_id, request.params.kind) == ("e", "embedding")
    assert request.params.to_request() == {"input": ["x"], "dimensions": 8}
    with pytest.raises(InvalidInput) as raised:  # a chat request is not an embeddings body
        parse_requests(
            [{"custom_id": "c", "model": "sim-embed-small", "prompt": "hi", "input": "x"}],
            limit=10,
            endpoint=EMBEDDINGS,
        )
    assert raised.value.param == "requests[0].prompt"
    with pytest.raises(InvalidInput) as raised:
        parse_requests(
            [{"custom_id": 7, "model": "sim-gpt-mini", "prompt": "hi"}],
            limit=10,
            endpoint=COMPLETIONS,
        )
    assert raised.value.param == "requests[0].custom_id"


def test_an_embeddings_batch_holds_50000_inputs_and_not_one_more() -> None:
    def batch(*sizes: int) -> list[dict[str, Any]]:
        return [
            {"custom_id": f"r{i}", "model": "sim-embed-small", "input": ["t"] * size}
            for i, size in enumerate(sizes)
        ]

    full = [2048] * 24 + [848]
    got = parse_requests(batch(*full), limit=100, endpoint=EMBEDDINGS)
    assert sum(len(r.params.to_request()["input"]) for r in got.requests) == 50_000
    with pytest.raises(BatchTooLarge) as raised:
        parse_requests(batch(*full[:-1], 849), limit=100, endpoint=EMBEDDINGS)
    assert (raised.value.code, raised.value.http_status) == ("batch_too_large", 413)
    assert "50,001" in raised.value.message
    # A file's lines are collected, but a batch too large is refused whole.
    over = [
        orjson.dumps(line(x.pop("custom_id"), url=EMBEDDINGS, body=x))
        for x in batch(*full[:-1], 849)
    ]
    numbered = list(numbered_lines([b"\n".join(over)]))
    with pytest.raises(BatchTooLarge):
        read_lines(numbered, count=len(numbered), limit=100, endpoint=EMBEDDINGS, collect=True)
