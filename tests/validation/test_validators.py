"""Response validators: refused at submission when they cannot run, enforced on answers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.jobs.schemas import ChatParams
from app.providers.errors import ErrorKind, ProviderError
from app.providers.types import Completion, Usage
from app.validation.checks import enforce, rejection

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "score": {"type": "integer", "maximum": 10}},
    "required": ["answer"],
}


def job(*validators: dict[str, Any]) -> ChatParams:
    return ChatParams.model_validate({"model": "m", "prompt": "hi", "validators": list(validators)})


def refusal(*validators: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        job(*validators)
    return str(caught.value)


def test_validators_are_stored_on_the_job_request_as_submitted() -> None:
    stored = job({"type": "json_schema", "schema": SCHEMA}, {"type": "min_length", "length": 3})
    assert stored.to_request()["validators"] == [
        {"type": "json_schema", "schema": SCHEMA},
        {"type": "min_length", "length": 3},
    ]


def test_an_invalid_json_schema_is_refused_at_submission() -> None:
    message = refusal({"type": "json_schema", "schema": {"type": "objekt"}})
    assert "not a valid JSON Schema" in message


def test_a_schema_referring_outside_itself_is_refused() -> None:
    remote = {"$ref": "https://example.com/schema.json"}
    assert "does not point inside the schema" in refusal({"type": "json_schema", "schema": remote})
    dangling = {"$ref": "#/$defs/missing", "$defs": {"there": {"type": "string"}}}
    assert "does not point inside" in refusal({"type": "json_schema", "schema": dangling})


def test_a_schema_with_local_references_is_accepted_and_followed() -> None:
    schema = {
        "$defs": {"name": {"type": "string", "minLength": 2}},
        "type": "object",
        "properties": {"name": {"$ref": "#/$defs/name"}},
        "required": ["name"],
    }
    validators = job({"type": "json_schema", "schema": schema}).to_request()["validators"]
    assert rejection(validators, '{"name": "Ada"}') is None
    assert "too short" in (rejection(validators, '{"name": "A"}') or "")


def test_a_pattern_re2_cannot_run_is_refused() -> None:
    assert "RE2" in refusal({"type": "regex", "pattern": r"(a)\1"})  # a backreference
    assert "RE2" in refusal({"type": "regex", "pattern": r"(?<=a)b"})  # a look-behind
    assert "RE2" in refusal({"type": "regex", "pattern": "("})


def test_an_overlong_pattern_is_refused() -> None:
    assert "at most 1000" in refusal({"type": "regex", "pattern": "a" * 1001})


def test_a_catastrophic_pattern_is_matched_in_linear_time() -> None:
    """(a+)+$ against a long run of a's and a b takes exponential time in a backtracking
    engine; RE2 answers at once (no timing asserted: the test would hang otherwise)."""
    validators = job({"type": "regex", "pattern": r"^(a+)+$"}).to_request()["validators"]
    assert rejection(validators, "a" * 50_000 + "b") is not None
    assert rejection(validators, "a" * 50_000) is None


def test_unknown_validator_types_and_fields_are_refused() -> None:
    assert "json_schema" in refusal({"type": "spellcheck"})
    assert "extra" in refusal({"type": "min_length", "length": 2, "chars": 3}).lower()


def test_too_many_validators_are_refused() -> None:
    assert "at most 8" in refusal(*[{"type": "min_length", "length": 1}] * 9)


def test_json_schema_checks_the_whole_answer() -> None:
    validators = [{"type": "json_schema", "schema": SCHEMA}]
    assert rejection(validators, ' {"answer": "yes", "score": 3}\n') is None
    assert "not JSON" in (rejection(validators, "Sure! Here it is: {}") or "")
    assert "'answer' is a required property" in (rejection(validators, '{"score": 3}') or "")
    assert "at /score" in (rejection(validators, '{"answer": "x", "score": 11}') or "")


def test_regex_and_its_negation() -> None:
    found = [{"type": "regex", "pattern": r"(?i)\bparis\b"}]
    absent = [{"type": "regex", "pattern": r"(?i)as an ai", "negate": True}]
    assert rejection(found, "It is Paris.") is None
    assert "not found" in (rejection(found, "It is Lyon.") or "")
    assert rejection(absent, "It is Paris.") is None
    assert "must not" in (rejection(absent, "As an AI, I cannot") or "")


def test_min_length_ignores_surrounding_blanks() -> None:
    validators = [{"type": "min_length", "length": 5}]
    assert rejection(validators, "hello") is None
    assert "3 characters, fewer than 5" in (rejection(validators, "  hey \n") or "")
    assert rejection(validators, None) is not None  # a tool call with no text


def test_the_first_failing_validator_is_named_by_its_number() -> None:
    validators = [{"type": "min_length", "length": 1}, {"type": "regex", "pattern": "x"}]
    assert (rejection(validators, "abc") or "").startswith("validator 2 (regex)")


def test_a_refused_answer_is_a_quality_failure_that_keeps_the_billed_completion() -> None:
    completion = Completion(text="prose", finish_reason="stop", usage=Usage(12, 3))
    request = job({"type": "json_schema", "schema": SCHEMA}).to_request()
    with pytest.raises(ProviderError) as caught:
        enforce(request, completion)
    assert caught.value.error_kind is ErrorKind.QUALITY
    assert caught.value.completion is completion  # the attempt is still paid for
    enforce({"messages": []}, completion)  # no validators: nothing to enforce


def test_schema_patterns_run_on_re2_and_must_compile_there() -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}}}
    validators = job({"type": "json_schema", "schema": schema}).to_request()["validators"]
    assert rejection(validators, '{"code": "' + "a" * 50_000 + '!"}') is not None
    assert rejection(validators, '{"code": "aaa"}') is None
    backreference = {"type": "string", "pattern": r"(a)\1"}
    assert "RE2" in refusal({"type": "json_schema", "schema": backreference})


def test_pattern_properties_and_unknown_dialects_are_refused() -> None:
    by_pattern = {"type": "object", "patternProperties": {"^x": {"type": "string"}}}
    assert "patternProperties" in refusal({"type": "json_schema", "schema": by_pattern})
    assert "dialect" in refusal({"type": "json_schema", "schema": {"$schema": "http://nope"}})
    assert "dialect" in refusal({"type": "json_schema", "schema": {"$schema": ["x"]}})
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string"}
    assert job({"type": "json_schema", "schema": draft7}).validators


def test_a_schema_holding_an_integer_beyond_64_bits_is_refused() -> None:
    huge = {"type": "integer", "maximum": 2**64 + 1}
    assert "64 bits" in refusal({"type": "json_schema", "schema": huge})
