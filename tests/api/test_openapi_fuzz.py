"""Schemathesis over the API's own OpenAPI schema, against the real app on its real database:
whatever it sends, the API answers without a 5xx, with a status and a body its schema declares.

``positive_data_acceptance`` is left out on purpose: a request can satisfy the schema and still
be refused by rules JSON Schema cannot state (an unknown model name, ``prompt`` and
``messages`` both given), and those refusals are the point. ``negative_data_rejection`` is left
out for multipart bodies: every part is text there, so a "wrong type" the fuzzer makes (an
integer field given as an array, which an empty array serializes to nothing at all) can reach
the wire as a perfectly valid upload.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from sqlalchemy import Engine, text

from app.main import create_app

pytestmark = pytest.mark.fuzz

# JSONL bodies are arbitrary text to the fuzzer: exactly what the line parser must survive.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")

# The document is the app's own; building it needs no database.
schema = schemathesis.openapi.from_dict(create_app().openapi())

# Endpoints that answer with their job's outcome: a 502-504 there is the job's failure (or
# the wait running out), declared in the schema, not the API failing.
WAITS_FOR_JOBS = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}

# What the admin key may change; put back as it was after each example.
RESTORED = {
    "providers": "name",
    "models": "id",
    "api_keys": "id",
    "tenants": "id",
    "gateway_keys": "id",
    "budgets": "id",
    "routing_policies": "name",
}


@pytest.fixture(autouse=True)
def registry_restored(engine: Engine) -> Iterator[None]:
    """The fuzzer may change limits, store keys, add tenants, budgets or policies; later tests
    get the gateway back as it was."""
    with engine.connect() as conn:
        tables = [t for t in RESTORED if conn.execute(text(f"SELECT to_regclass('{t}')")).scalar()]
        saved = {
            t: conn.execute(text(f"SELECT to_jsonb(x) FROM {t} x")).scalars().all() for t in tables
        }
    yield
    with engine.begin() as conn:
        for table in reversed(tables):
            key = RESTORED[table]
            keep = [row[key] for row in saved[table]]
            conn.execute(
                text(f"DELETE FROM {table} WHERE NOT ({key} = ANY(:keep))"), {"keep": keep}
            )
        for table in tables:
            key = RESTORED[table]
            columns = (
                conn.execute(
                    text(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = :t "
                        "ORDER BY ordinal_position"
                    ),
                    {"t": table},
                )
                .scalars()
                .all()
            )
            listed = ", ".join(columns)
            excluded = ", ".join(f"EXCLUDED.{c}" for c in columns)
            for row in saved[table]:
                conn.execute(
                    text(
                        f"INSERT INTO {table} SELECT * FROM "
                        f"jsonb_populate_record(NULL::{table}, CAST(:row AS jsonb)) "
                        f"ON CONFLICT ({key}) DO UPDATE SET ({listed}) = ROW({excluded})"
                    ),
                    {"row": json.dumps(row)},
                )


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_schema_and_never_fails(
    case: Any, api_url: str, admin_key: str
) -> None:
    excluded = [positive_data_acceptance]
    if case.path in WAITS_FOR_JOBS:
        excluded.append(not_a_server_error)
    if case.media_type == "multipart/form-data":
        excluded.append(negative_data_rejection)
    response = case.call_and_validate(
        base_url=api_url,
        # These endpoints wait for their job; no worker may serve it, so wait briefly.
        headers={"Authorization": f"Bearer {admin_key}", "x-switchboard-wait-s": "0.2"},
        excluded_checks=excluded,
    )
    if case.path in WAITS_FOR_JOBS:  # 502-504 are its job's failure or the wait running out
        assert response.status_code not in (500, 501), response.text
