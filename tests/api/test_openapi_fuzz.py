"""Schemathesis over the API's own OpenAPI schema, against the real app on its real database:
whatever it sends, the API answers without a 5xx, with a status and a body its schema declares.

``positive_data_acceptance`` is left out on purpose: a request can satisfy the schema and still
be refused by rules JSON Schema cannot state (an unknown model name, ``prompt`` and
``messages`` both given), and those refusals are the point.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import Engine, text

from app.main import create_app

pytestmark = pytest.mark.fuzz

# JSONL bodies are arbitrary text to the fuzzer: exactly what the line parser must survive.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")

# The document is the app's own; building it needs no database.
schema = schemathesis.openapi.from_dict(create_app().openapi())


@pytest.fixture(autouse=True)
def registry_restored(engine: Engine) -> Iterator[None]:
    """The fuzzer may add or change providers and models, or store keys; later tests get the
    registry back."""
    with engine.connect() as conn:
        providers = conn.execute(text("SELECT * FROM providers")).mappings().all()
        models = conn.execute(text("SELECT * FROM models")).mappings().all()
        keys = set(conn.execute(text("SELECT id FROM api_keys")).scalars())
    yield
    with engine.begin() as conn:
        # Providers and models it registered go; the ones it edited get their values back.
        conn.execute(
            text("DELETE FROM providers WHERE NOT (name = ANY(:keep))"),
            {"keep": [p["name"] for p in providers]},
        )
        conn.execute(
            text("DELETE FROM models WHERE NOT (id = ANY(:keep))"),
            {"keep": [m["id"] for m in models]},
        )
        for model in models:
            conn.execute(
                text(
                    "UPDATE models SET input_per_mtok = :input_per_mtok, "
                    "output_per_mtok = :output_per_mtok, "
                    "cached_input_per_mtok = :cached_input_per_mtok, "
                    "capabilities = :capabilities, rpm = :rpm, tpm = :tpm, enabled = :enabled, "
                    "deprecated = :deprecated, overrides = :overrides WHERE id = :id"
                ),
                dict(model),
            )
        for row in providers:
            conn.execute(
                text(
                    "UPDATE providers SET rpm = :rpm, tpm = :tpm, itpm = :itpm, otpm = :otpm, "
                    "burst_s = :burst_s, enabled = :enabled, overrides = :overrides "
                    "WHERE name = :name"
                ),
                dict(row),
            )
        conn.execute(text("DELETE FROM api_keys WHERE NOT (id = ANY(:keep))"), {"keep": list(keys)})


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_schema_and_never_fails(case: Any, api_url: str) -> None:
    case.call_and_validate(base_url=api_url, excluded_checks=[positive_data_acceptance])
