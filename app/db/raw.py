"""Plain psycopg connections from the engine's pool, for the per-job hot path.

SQLAlchemy costs about 130 µs of CPU per statement on top of psycopg's own; on a path that runs
two statements per job at hundreds of jobs a second, that is a large share of a worker's CPU.
The connections still come from (and go back to) the engine's pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Engine

T = TypeVar("T")


@contextmanager
def autocommit(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """A pooled psycopg connection where each statement commits on its own."""
    proxied = engine.raw_connection()
    conn: psycopg.Connection[Any] = proxied.driver_connection  # type: ignore[assignment]
    try:
        conn.autocommit = True
        yield conn
    except BaseException:
        if conn.broken or conn.closed:
            proxied.invalidate()  # e.g. Postgres restarted: don't hand this one out again
        raise
    finally:
        if not (conn.broken or conn.closed):
            conn.autocommit = False  # the pool's other users expect its default
        proxied.close()


def retrying(
    engine: Engine,
    work: Callable[[psycopg.Connection[Any]], T],
    *,
    for_s: float,
    pause_s: float = 0.5,
) -> T:
    """Run ``work`` on a fresh connection, again while Postgres is unreachable, for ``for_s``.

    For statements that must land once their effect has happened elsewhere: recording an
    attempt after the provider answered. Each try is a new connection from the pool, so a
    server restart costs a few tries and nothing else.
    """
    deadline = time.monotonic() + for_s
    while True:
        try:
            with autocommit(engine) as conn:
                return work(conn)
        except psycopg.OperationalError:
            if time.monotonic() + pause_s >= deadline:
                raise
            time.sleep(pause_s)
