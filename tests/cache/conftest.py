"""What the cache tests share: requests, waiting for batches, and reading the ledger back."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
from sqlalchemy import Engine, text

from app.cache.index import Query, unit
from tests.conftest import Simulator, wait_until

MODEL = "sim-gpt-mini"  # on sim-openai, served by the tests' workers
CACHE_COLUMNS = (
    "id, custom_id, status, cache, cache_source_job_id, cache_similarity, cost_usd, "
    "cost_saved_usd, input_tokens, output_tokens, served_model, result, attempt_count, "
    "budget_holds, kind"
)


def line(custom_id: str, prompt: str, **extra: Any) -> dict[str, Any]:
    """A deterministic chat request (``temperature: 0``) in a batch's flat shape."""
    return {
        "custom_id": custom_id,
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 24,
        "temperature": 0,
        **extra,
    }


def chat(prompt: str, **extra: Any) -> dict[str, Any]:
    """A ``POST /v1/chat/completions`` body."""
    body = line("x", prompt, **extra)
    body.pop("custom_id")
    return body


def wait_for_batch(client: httpx.Client, batch_id: str, timeout: float = 60) -> dict[str, Any]:
    batch: dict[str, Any] = {}

    def ended() -> bool:
        nonlocal batch
        batch = client.get(f"/v1/batches/{batch_id}").json()
        return batch["status"] in ("completed", "failed", "expired", "cancelled")

    wait_until(ended, timeout=timeout, every=0.1)
    return batch


def batch_jobs(engine: Engine, batch_id: str) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(f"SELECT {CACHE_COLUMNS} FROM jobs WHERE batch_id = :b ORDER BY custom_id"),
                {"b": batch_id},
            )
        )


def job(engine: Engine, job_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            text(f"SELECT {CACHE_COLUMNS} FROM jobs WHERE id = :id"),
            {"id": job_id},
        ).one()


def attempts_of(engine: Engine, job_ids: list[str]) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM attempts WHERE job_id = ANY(:ids)"), {"ids": job_ids}
            ).scalar_one()
        )


def calls(simulator: Simulator, provider: str = "sim-openai") -> int:
    """Requests the simulator's ``provider`` received since the test began."""
    return int(simulator.stats()["providers"].get(provider, {}).get("requests", 0))


def model_calls(simulator: Simulator, model: str, provider: str = "sim-openai") -> int:
    stats = simulator.stats()["providers"].get(provider, {})
    return int(stats.get("by_model", {}).get(model, {}).get("requests", 0))


def in_flight(simulator: Simulator, provider: str = "sim-openai") -> int:
    """Requests ``provider`` is answering right now."""
    return int(simulator.stats()["providers"].get(provider, {}).get("in_flight", 0))


class Entries:
    """Entries of one tenant written straight into the tables, as the cache writes them."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.tenant = f"t-{uuid.uuid4().hex[:10]}"
        self.ids: list[int] = []

    def add(
        self,
        vector: Any,
        *,
        state: str = "ready",
        priority: str = "normal",
        scope: str = "s1",
        model: str = "emb",
        expired: bool = False,
        tenant: str | None = None,
        used_minutes_ago: int | None = None,
    ) -> tuple[int, str]:
        job_id = f"job_{uuid.uuid4().hex}"
        self.conn.execute(
            "INSERT INTO jobs (id, tenant_id, status, priority, request, models, provider) "
            "VALUES (%s, %s, 'succeeded', %s, '{}', '{m}', 'p')",
            (job_id, tenant or self.tenant, priority),
        )
        row = self.conn.execute(
            """INSERT INTO cache_entries (tenant_id, key, kind, state, job_id, priority,
                requested, scope, embedding_model, embedding, expires_at, ready_at, last_hit_at)
            VALUES (%s, %s, 'chat', %s, %s, %s, 'm', %s, %s, %s,
                now() + CASE WHEN %s THEN interval '-1 minute' ELSE interval '1 hour' END,
                now() - interval '1 day', now() - make_interval(mins => %s))
            RETURNING id""",
            (
                tenant or self.tenant,
                uuid.uuid4().hex,
                state,
                job_id,
                priority,
                scope,
                model,
                unit(vector).tolist(),
                expired,
                used_minutes_ago,
            ),
        ).fetchone()
        assert row is not None
        self.ids.append(row[0])
        return row[0], job_id

    def query(
        self, vector: Any, *, exclude: str = "", waitable: tuple[str, ...] = ("high", "normal")
    ) -> Query:
        return Query(self.tenant, "s1", "emb", unit(vector), exclude, waitable)

    def drop(self) -> None:
        self.conn.execute(
            "DELETE FROM jobs WHERE tenant_id = %s "
            "OR id IN (SELECT job_id FROM cache_entries WHERE id = ANY(%s))",
            (self.tenant, self.ids),
        )
