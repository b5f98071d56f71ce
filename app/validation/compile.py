"""Compiling validators' schemas and patterns, once per distinct one in a process.

Both are cached: a worker sees the same few validators on thousands of jobs, and a compiled
JSON Schema validator or RE2 program is what costs. ``ValueError`` says what is wrong with
one that cannot be compiled (the submission turns it into a 400 naming the field).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any, Protocol, cast
from urllib.parse import unquote

import orjson
import re2
from jsonschema import exceptions as schema_errors
from jsonschema import validators as schema_validators
from jsonschema.protocols import Validator as SchemaValidator
from referencing import Registry

# An RE2 program this large is far beyond any sane validator; the cap bounds what a pattern
# like ``(a{100}){100}`` may allocate. Matching is linear in the text whatever the pattern.
PATTERN_MAX_MEM = 8 << 20


class Match(Protocol):
    def group(self, index: int) -> str | None: ...


class Pattern(Protocol):
    @property
    def groups(self) -> int: ...

    def search(self, text: str) -> Match | None: ...


def compile_pattern(pattern: str) -> Pattern:
    """The RE2 program for ``pattern``; ``ValueError`` if RE2 cannot run it."""
    return _pattern(pattern)


@lru_cache(maxsize=512)
def _pattern(pattern: str) -> Pattern:
    options = re2.Options()
    options.max_mem = PATTERN_MAX_MEM
    options.log_errors = False  # a caller's bad pattern is a 400, not a line in our logs
    try:
        return cast(Pattern, re2.compile(pattern, options))
    except re2.error as exc:
        why = exc.args[0] if exc.args else exc
        why = why.decode(errors="replace") if isinstance(why, bytes) else str(why)
        raise ValueError(f"not a pattern RE2 can run: {why}") from None


def compile_schema(schema: dict[str, Any]) -> SchemaValidator:
    """A validator for ``schema``; ``ValueError`` if it is not a valid JSON Schema."""
    return _schema(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode())


# Every $ref must resolve inside the schema itself (checked when it is compiled): the
# registry holds nothing and retrieves nothing, so no schema makes a worker fetch a URL.
_NO_REMOTE: Registry[Any] = Registry()


@lru_cache(maxsize=256)
def _schema(text: str) -> SchemaValidator:
    schema = orjson.loads(text)
    dialect = schema.get("$schema")
    if dialect is not None and (
        not isinstance(dialect, str)
        or schema_validators.validator_for(schema, default=cast(Any, None)) is None
    ):
        raise ValueError(f"unknown $schema dialect {dialect!r}")
    cls = schema_validators.validator_for(schema, default=schema_validators.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except schema_errors.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise ValueError(
            f"not a valid JSON Schema{f' at {where}' if where else ''}: {exc.message}"
        ) from None
    if _values(schema, "patternProperties", of=dict):
        raise ValueError(
            "patternProperties is not supported: its patterns would be matched by a "
            "backtracking engine (use propertyNames with a pattern)"
        )
    for pattern in _values(schema, "pattern"):
        try:
            compile_pattern(pattern)
        except ValueError as exc:
            raise ValueError(f"pattern {pattern!r}: {exc}") from None
    anchors = set(_values(schema, "$anchor"))
    for ref in _values(schema, "$ref"):
        if not _resolves(schema, ref, anchors):
            raise ValueError(
                f"$ref {ref!r} does not point inside the schema: only local references "
                "(#/..., #anchor) are allowed"
            )
    return _with_re2(cls)(schema, registry=_NO_REMOTE)


@lru_cache(maxsize=8)
def _with_re2(cls: type[SchemaValidator]) -> type[SchemaValidator]:
    """``cls`` matching ``pattern`` with RE2, so no schema can make a worker backtrack for
    ever on an answer (jsonschema itself uses Python's ``re``)."""
    extended = schema_validators.extend(cls, {"pattern": _pattern_keyword})  # type: ignore[no-untyped-call]
    return cast(type[SchemaValidator], extended)


def _pattern_keyword(
    validator: SchemaValidator, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[schema_errors.ValidationError]:
    if validator.is_type(instance, "string") and compile_pattern(pattern).search(instance) is None:
        yield schema_errors.ValidationError(f"{instance!r} does not match {pattern!r}")


def _values(node: Any, key: str, *, of: type = str) -> list[Any]:
    """Every value of ``key`` (of type ``of``) anywhere in the schema."""
    found: list[Any] = []
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key and isinstance(value, of):
                found.append(value)
            else:
                found.extend(_values(value, key, of=of))
    elif isinstance(node, list):
        for item in node:
            found.extend(_values(item, key, of=of))
    return found


def _resolves(schema: dict[str, Any], ref: str, anchors: set[str]) -> bool:
    if not ref.startswith("#"):
        return False
    fragment = unquote(ref[1:])
    if fragment and not fragment.startswith("/"):
        return fragment in anchors
    node: Any = schema
    for token in fragment.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False
    return True
