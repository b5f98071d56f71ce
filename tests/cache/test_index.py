"""The two semantic indexes against the same entries in the real database: the same answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from sqlalchemy import Engine

from app.cache.index import (
    Candidate,
    InProcessIndex,
    PgvectorIndex,
    Query,
    SemanticIndex,
    choose_index,
    has_pgvector,
    unit,
)
from app.db.raw import autocommit
from tests.cache.conftest import Entries

DIMS = 16
RNG = np.random.default_rng(7)


@pytest.fixture
def conn(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    with autocommit(engine) as c:
        if not has_pgvector(c):
            pytest.skip("this database has no pgvector to compare with")
        yield c


@pytest.fixture
def partition(conn: psycopg.Connection[Any]) -> Iterator[Entries]:
    made = Entries(conn)
    yield made
    made.drop()


def nearest(
    index: SemanticIndex, conn: psycopg.Connection[Any], query: Query
) -> dict[str, Candidate]:
    return {c.state: c for c in index.nearest(conn, query)}


def test_both_indexes_find_the_same_nearest_ready_and_pending_entries(
    conn: psycopg.Connection[Any], partition: Entries
) -> None:
    vectors = RNG.normal(size=(60, DIMS))
    ready = [partition.add(v)[0] for v in vectors[:40]]
    pending = [partition.add(v, state="pending") for v in vectors[40:55]]
    # Never an answer here: another tenant's, scope's or embedding model's; expired; a low one.
    partition.add(vectors[55], tenant=f"other-{uuid.uuid4().hex[:6]}")
    partition.add(vectors[56], scope="s2")
    partition.add(vectors[57], model="other-model")
    partition.add(vectors[58], expired=True)
    partition.add(vectors[59], state="pending", priority="low")
    ready_vectors = np.stack([unit(v) for v in vectors[:40]])
    pending_vectors = np.stack([unit(v) for v in vectors[40:55]])

    indexes = (PgvectorIndex(), InProcessIndex())
    for probe in [*vectors[50:], *RNG.normal(size=(10, DIMS))]:
        query = partition.query(probe)
        best_ready = int(np.argmax(ready_vectors @ query.vector))
        best_pending = int(np.argmax(pending_vectors @ query.vector))
        for index in indexes:
            found = nearest(index, conn, query)
            assert found["ready"].entry_id == ready[best_ready]
            assert found["pending"].entry_id == pending[best_pending][0]
            expected = float(ready_vectors[best_ready] @ query.vector)
            assert found["ready"].similarity == pytest.approx(expected, abs=1e-5)

    # The asker's own pending entry, and jobs of a lower priority, are never waited for.
    own_id, own_job = pending[0]
    for index in indexes:
        only_high = partition.query(vectors[40], exclude=own_job, waitable=("high",))
        assert "pending" not in nearest(index, conn, only_high)
        mine = partition.query(vectors[40], exclude=own_job)
        assert nearest(index, conn, mine)["pending"].entry_id != own_id


def test_the_in_process_index_follows_changes_to_the_table(
    conn: psycopg.Connection[Any], partition: Entries
) -> None:
    index = InProcessIndex()
    a, b = RNG.normal(size=(2, DIMS))
    first, _ = partition.add(a)
    assert nearest(index, conn, partition.query(b))["ready"].entry_id == first

    closer, _ = partition.add(b)  # written after the index read the partition
    found = nearest(index, conn, partition.query(b))["ready"]
    assert (found.entry_id, found.similarity) == (closer, pytest.approx(1.0, abs=1e-6))

    conn.execute("DELETE FROM cache_entries WHERE id = %s", (closer,))
    assert nearest(index, conn, partition.query(b))["ready"].entry_id == first

    conn.execute(
        "UPDATE cache_entries SET expires_at = now() - interval '1 second', "
        "version = nextval('cache_entries_version_seq') WHERE id = %s",
        (first,),
    )
    assert index.nearest(conn, partition.query(b)) == []


def test_auto_uses_pgvector_where_the_database_has_it(conn: psycopg.Connection[Any]) -> None:
    assert isinstance(choose_index(conn, "auto"), PgvectorIndex)
    assert isinstance(choose_index(conn, "in_process"), InProcessIndex)
