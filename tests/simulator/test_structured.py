"""The simulator's structured output: response_format answered in JSON, deterministically."""

from __future__ import annotations

import orjson

from app.simulator.structured import requested_schema, structured
from app.simulator.tokens import Finish, generate_reply

SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "score": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "kind": {"enum": ["fact", "opinion"]},
        "meta": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
    },
    "required": ["answer", "score"],
}


def reply(max_tokens: int = 100):  # type: ignore[no-untyped-def]
    return generate_reply(["Is it?"], prompt_tokens=9, output_range=(6, 6), max_tokens=max_tokens)


def test_what_each_response_format_asks_for() -> None:
    assert requested_schema({"type": "json_object"}) == {}
    wrapped = {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}
    assert requested_schema(wrapped) == SCHEMA
    assert requested_schema({"type": "text"}) is None
    assert requested_schema(None) is None


def test_a_schema_is_answered_with_a_value_of_each_propertys_type() -> None:
    answered = structured(reply(), SCHEMA, max_tokens=100, digest=7)
    document = orjson.loads(answered.text)
    assert document["answer"] == reply().text
    assert isinstance(document["score"], int)
    assert document["tags"] == [reply().text]
    assert document["kind"] == "fact"
    assert isinstance(document["meta"]["ok"], bool)
    assert answered.finish is Finish.STOP
    assert structured(reply(), SCHEMA, max_tokens=100, digest=7) == answered  # deterministic


def test_json_object_is_an_answer_field() -> None:
    assert orjson.loads(structured(reply(), {}, max_tokens=100, digest=1).text) == {
        "answer": reply().text
    }


def test_json_longer_than_max_tokens_is_cut_and_no_longer_parses() -> None:
    cut = structured(reply(), SCHEMA, max_tokens=4, digest=7)
    assert cut.finish is Finish.LENGTH
    assert len(cut.text) == 16
    try:
        orjson.loads(cut.text)
    except orjson.JSONDecodeError:
        return
    raise AssertionError("a cut document parsed")
