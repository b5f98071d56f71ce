"""Plain psycopg connections from the engine's pool, for the per-job hot path.

SQLAlchemy costs about 130 µs of CPU per statement on top of psycopg's own; on a path that runs
two statements per job at hundreds of jobs a second, that is a large share of a worker's CPU.
The connections still come from (and go back to) the engine's pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Engine


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
