"""The cache's share of the reconciler's pass: expiry, leftovers, and the bound on storage.

- **Expiry**: ready entries past ``expires_at`` are deleted (their answers stay on their jobs;
  only the reuse ends). A lookup never serves an expired entry even before the sweep.
- **Leftovers**: jobs that others wait for but that ended without being settled — their
  worker died between recording the end and settling, or they ended outside a worker (a
  deadline in the queue, a cancellation, a batch stopped) — and producers of pending entries
  in the same state. The caller settles each (app/cache/service.py).
- **Eviction**: a tenant keeps at most ``cache_max_entries`` ready entries; beyond that, the
  least recently used go (last hit, else when they became ready).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

BATCH = 5000
LEFTOVERS = 200


@dataclass
class SweepReport:
    expired: int = 0
    settled: int = 0  # jobs that waited and were served or released by the sweep
    evicted: int = 0


_EXPIRE = """DELETE FROM cache_entries WHERE id IN (
    SELECT id FROM cache_entries WHERE state = 'ready' AND expires_at <= now()
    ORDER BY expires_at LIMIT %(limit)s)"""


def expire(conn: psycopg.Connection[Any]) -> int:
    total = 0
    while True:
        deleted = conn.execute(_EXPIRE, {"limit": BATCH}).rowcount
        total += deleted
        if deleted < BATCH:
            return total


_ENDED = "('succeeded', 'failed', 'cancelled')"
_LEFTOVERS = f"""(SELECT DISTINCT h.holder_id FROM cache_holds h
        LEFT JOIN jobs j ON j.id = h.holder_id
        WHERE j.id IS NULL OR j.status IN {_ENDED} LIMIT %(limit)s)
    UNION
    (SELECT e.job_id FROM cache_entries e JOIN jobs j ON j.id = e.job_id
        WHERE e.state = 'pending' AND j.status IN {_ENDED} LIMIT %(limit)s)"""  # noqa: S608


def leftovers(conn: psycopg.Connection[Any]) -> list[str]:
    """Ended (or vanished) jobs that still have waiters or a pending entry."""
    return [row[0] for row in conn.execute(_LEFTOVERS, {"limit": LEFTOVERS})]


_OVER = """SELECT tenant_id, count(*) - %(max)s FROM cache_entries WHERE state = 'ready'
    AND (CAST(%(tenant)s AS text) IS NULL OR tenant_id = %(tenant)s)
    GROUP BY tenant_id HAVING count(*) > %(max)s"""
_EVICT = """DELETE FROM cache_entries WHERE id IN (
    SELECT id FROM cache_entries WHERE tenant_id = %(tenant)s AND state = 'ready'
    ORDER BY coalesce(last_hit_at, ready_at) LIMIT %(extra)s)"""


def evict(conn: psycopg.Connection[Any], max_entries: int, tenant_id: str | None = None) -> int:
    """Bring every tenant (or just ``tenant_id``) down to ``max_entries`` ready entries."""
    over = conn.execute(_OVER, {"max": max_entries, "tenant": tenant_id}).fetchall()
    return sum(
        conn.execute(_EVICT, {"tenant": tenant, "extra": extra}).rowcount for tenant, extra in over
    )
