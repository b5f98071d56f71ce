"""Holding an answer to its request's validators: the worker's side of ``app.validation``.

A chat job's stored request keeps its ``validators`` as submitted (already checked, see
``schemas``). After a call succeeds, ``enforce`` runs them in order on the answer's text; the
first that fails raises ``ResponseRejected`` — the ``quality`` class of the error taxonomy —
carrying the completion, so the attempt is billed and the decision table retries or falls
back like after any other failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from app.providers.errors import ResponseRejected
from app.providers.types import Completion
from app.validation.compile import compile_pattern, compile_schema

VALIDATORS = "validators"  # the key of a stored job request that holds them
MAX_DETAIL_CHARS = 300


def enforce(request: dict[str, Any], completion: Completion) -> None:
    """Raise ``ResponseRejected`` if the answer fails one of the request's validators."""
    validators = request.get(VALIDATORS)
    if not validators:
        return
    why = rejection(validators, completion.text)
    if why is not None:
        raise ResponseRejected(f"answer failed validation: {why}", completion=completion)


def rejection(validators: Sequence[dict[str, Any]], text: str | None) -> str | None:
    """Why ``text`` fails the first validator it fails (numbered from 1), or None."""
    answer = text or ""
    for number, validator in enumerate(validators, start=1):
        why = _failure(validator, answer)
        if why is not None:
            return f"validator {number} ({validator['type']}): {why}"
    return None


def _failure(validator: dict[str, Any], text: str) -> str | None:
    kind = validator["type"]
    if kind == "min_length":
        length = len(text.strip())
        wanted = int(validator["length"])
        return None if length >= wanted else f"{length} characters, fewer than {wanted}"
    if kind == "regex":
        found = compile_pattern(validator["pattern"]).search(text) is not None
        if validator.get("negate", False):
            return "the answer contains the pattern it must not" if found else None
        return None if found else "the pattern was not found in the answer"
    if kind == "json_schema":
        return _schema_failure(validator["schema"], text)
    raise AssertionError(f"unknown validator type {kind!r}")  # refused at submission


def _schema_failure(schema: dict[str, Any], text: str) -> str | None:
    try:
        document = orjson.loads(text.strip())
    except orjson.JSONDecodeError as exc:
        return f"the answer is not JSON ({_short(str(exc))})"
    error = next(iter(compile_schema(schema).iter_errors(document)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return _short(f"{f'at /{where}: ' if where else ''}{error.message}")


def _short(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"
