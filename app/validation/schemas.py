"""The validators a request may carry, checked when it is submitted so a worker never meets
one it cannot run.

    {"type": "json_schema", "schema": {...}}         the whole answer is JSON valid against it
    {"type": "regex", "pattern": "...", "negate": b}  RE2 syntax: found (or, negated, absent)
    {"type": "min_length", "length": n}              at least n characters, blanks trimmed

A schema must be a valid JSON Schema (its ``$schema`` dialect, else 2020-12) that refers to
nothing outside itself; a pattern is compiled by RE2, whose matching time is linear in the
answer whatever the pattern (no backtracking), under a memory cap — so a pattern that would
explode a backtracking engine is still safe, and one RE2 cannot run (backreferences,
look-arounds) is refused here rather than found out by a worker.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.validation.compile import compile_pattern, compile_schema

MAX_VALIDATORS = 8
MAX_PATTERN_CHARS = 1000
MAX_SCHEMA_BYTES = 64 * 1024


class _Check(BaseModel):
    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, serialize_by_alias=True, validate_by_name=True
    )


class JsonSchemaCheck(_Check):
    """The answer, as a whole, is a JSON document valid against ``schema``."""

    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(
        alias="schema", description="A JSON Schema (draft 2020-12 unless it names its $schema)."
    )

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(orjson.dumps(value))
        except TypeError:  # an integer beyond 64 bits: it could not be stored exactly
            raise ValueError("a schema's integers must fit in 64 bits") from None
        if size > MAX_SCHEMA_BYTES:
            raise ValueError(f"a schema may be at most {MAX_SCHEMA_BYTES // 1024} KiB of JSON")
        compile_schema(value)  # raises ValueError saying what is wrong
        return value


class RegexCheck(_Check):
    """``pattern`` (RE2 syntax; ``(?i)`` for case-insensitive) is found in the answer — or,
    with ``negate``, is not (e.g. a refusal phrase)."""

    type: Literal["regex"]
    pattern: Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATTERN_CHARS)]
    negate: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        compile_pattern(value)  # raises ValueError saying what is wrong
        return value


class MinLengthCheck(_Check):
    """The answer, without leading and trailing blanks, has at least ``length`` characters."""

    type: Literal["min_length"]
    length: Annotated[int, Field(ge=1, le=1_000_000)]


Validator = Annotated[JsonSchemaCheck | RegexCheck | MinLengthCheck, Field(discriminator="type")]
Validators = Annotated[
    list[Validator],
    Field(
        max_length=MAX_VALIDATORS,
        description="Checks the answer must pass; one that fails is a `quality` failure, "
        "retried and fallen back from like any other (`app/routing/decision.py`).",
    ),
]
