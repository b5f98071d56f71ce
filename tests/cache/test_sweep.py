"""The sweep's expiry and eviction, on entries written straight into the real database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from sqlalchemy import Engine

from app.cache.sweep import evict, expire
from app.db.raw import autocommit
from tests.cache.conftest import Entries

VECTOR = np.ones(4)


@pytest.fixture
def entries(engine: Engine) -> Iterator[Entries]:
    with autocommit(engine) as conn:
        made = Entries(conn)
        yield made
        made.drop()


def ids(conn: psycopg.Connection[Any], tenant: str) -> set[int]:
    rows = conn.execute("SELECT id FROM cache_entries WHERE tenant_id = %s", (tenant,))
    return {row[0] for row in rows}


def test_answers_past_their_time_are_deleted_and_answers_in_flight_are_not(
    entries: Entries,
) -> None:
    fresh, _ = entries.add(VECTOR)
    entries.add(VECTOR, expired=True)
    in_flight, _ = entries.add(VECTOR, state="pending", expired=True)
    assert expire(entries.conn) >= 1
    assert ids(entries.conn, entries.tenant) == {fresh, in_flight}


def test_a_tenant_over_its_bound_keeps_its_most_recently_used_answers(
    entries: Entries,
) -> None:
    never_reused, _ = entries.add(VECTOR)  # ready a day ago, never hit since
    by_age = {minutes: entries.add(VECTOR, used_minutes_ago=minutes)[0] for minutes in range(1, 6)}
    in_flight, _ = entries.add(VECTOR, state="pending")
    assert evict(entries.conn, 3, entries.tenant) == 3
    assert ids(entries.conn, entries.tenant) == {by_age[1], by_age[2], by_age[3], in_flight}
    assert evict(entries.conn, 3, entries.tenant) == 0
    assert never_reused not in ids(entries.conn, entries.tenant)
