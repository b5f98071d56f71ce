"""Finding the cached prompt nearest a new one: pgvector in the database, or an in-process index.

Both answer the same question over ``cache_entries`` — within one tenant, semantic scope and
embedding model, the most similar ``ready`` answer (unexpired) and the most similar
``pending`` one (a job in flight the asker may wait for: not its own, of a priority at least
its own) — and both search exactly, not approximately: a partition is one tenant's requests
to one model with one system prompt and parameters, and its size is bounded by the tenant's
``cache_max_entries``. Vectors are stored unit length as ``real[]``, so either reads them.

- ``PgvectorIndex``: the database computes cosine distances (``<=>`` on the ``vector`` cast)
  and returns the two best rows; nothing but the query vector crosses the wire.
- ``InProcessIndex``: where the database has no pgvector, each process keeps a partition's
  vectors as a numpy matrix, brings it up to date on every lookup by reading only the rows
  whose ``version`` changed, rebuilds it now and then (to forget deleted rows), and checks
  the two it would answer with against the table before answering.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import psycopg

log = logging.getLogger(__name__)

Vector = npt.NDArray[np.float32]
PGVECTOR, IN_PROCESS = "pgvector", "in_process"


@dataclass(frozen=True, slots=True)
class Query:
    """A prompt's vector, and where its answer may come from."""

    tenant_id: str
    scope: str
    model: str  # the embedding model
    vector: Vector  # unit length
    exclude_job: str  # the asking job (its own pending entry)
    waitable: tuple[str, ...]  # priorities of pending jobs it may wait for


@dataclass(frozen=True, slots=True)
class Candidate:
    entry_id: int
    job_id: str
    state: str  # ready | pending
    similarity: float


class SemanticIndex(Protocol):
    name: str

    def nearest(self, conn: psycopg.Connection[Any], query: Query) -> list[Candidate]:
        """The most similar ready entry and the most similar pending one (each if any)."""
        ...


def unit(values: Any) -> Vector:
    """``values`` as a unit-length float32 vector (a zero vector stays zero)."""
    vector = np.asarray(values, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def literal(vector: Vector) -> str:
    """pgvector's text form of a vector."""
    return "[" + ",".join(f"{v:.8g}" for v in vector.tolist()) + "]"


_PARTITION = """tenant_id = %(tenant)s AND scope = %(scope)s AND embedding_model = %(model)s
    AND embedding IS NOT NULL AND array_length(embedding, 1) = %(dims)s"""
_NEAREST = f"""(SELECT id, job_id, state, 1 - (CAST(embedding AS vector) <=> %(v)s::vector)
        FROM cache_entries
        WHERE {_PARTITION} AND state = 'ready' AND expires_at > now()
        ORDER BY CAST(embedding AS vector) <=> %(v)s::vector LIMIT 1)
    UNION ALL
    (SELECT id, job_id, state, 1 - (CAST(embedding AS vector) <=> %(v)s::vector)
        FROM cache_entries
        WHERE {_PARTITION} AND state = 'pending' AND job_id <> %(exclude)s
            AND priority = ANY(%(waitable)s)
        ORDER BY CAST(embedding AS vector) <=> %(v)s::vector LIMIT 1)"""  # noqa: S608 - constants


def _params(query: Query) -> dict[str, Any]:
    return {
        "tenant": query.tenant_id,
        "scope": query.scope,
        "model": query.model,
        "dims": int(query.vector.shape[0]),
        "exclude": query.exclude_job,
        "waitable": list(query.waitable),
    }


class PgvectorIndex:
    """The database finds the nearest entries (pgvector's cosine distance)."""

    name = PGVECTOR

    def nearest(self, conn: psycopg.Connection[Any], query: Query) -> list[Candidate]:
        params = {**_params(query), "v": literal(query.vector)}
        rows = conn.execute(_NEAREST, params).fetchall()
        return [Candidate(int(i), job, state, float(sim)) for i, job, state, sim in rows]


_CHANGED = f"""SELECT id, job_id, state, priority, expires_at, embedding, version
    FROM cache_entries WHERE {_PARTITION} AND version > %(seen)s ORDER BY version"""  # noqa: S608
_STILL = """SELECT id, job_id, state, priority, expires_at FROM cache_entries
    WHERE id = ANY(%(ids)s)"""


@dataclass
class _Row:
    job_id: str
    state: str
    priority: str
    expires_at: datetime | None


@dataclass
class _Partition:
    """One partition's entries in this process."""

    rows: dict[int, _Row] = field(default_factory=dict)
    vectors: dict[int, Vector] = field(default_factory=dict)
    seen: int = 0  # the highest version read
    built_at: float = 0.0
    _matrix: Vector | None = None
    _ids: list[int] = field(default_factory=list)

    def matrix(self) -> tuple[list[int], Vector]:
        if self._matrix is None:
            self._ids = list(self.vectors)
            self._matrix = np.stack([self.vectors[i] for i in self._ids])
        return self._ids, self._matrix

    def put(self, entry_id: int, row: _Row, vector: Vector | None) -> None:
        self.rows[entry_id] = row
        if vector is not None:
            self.vectors[entry_id] = vector
            self._matrix = None

    def drop(self, entry_id: int) -> None:
        self.rows.pop(entry_id, None)
        if self.vectors.pop(entry_id, None) is not None:
            self._matrix = None


class InProcessIndex:
    """This process's copy of each partition's vectors, searched with numpy."""

    name = IN_PROCESS
    RETRIES = 3  # lookups whose best candidates changed under them look again

    def __init__(
        self,
        *,
        rebuild_s: float = 60.0,
        max_partitions: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._parts: OrderedDict[tuple[str, str, str, int], _Partition] = OrderedDict()
        self._rebuild_s = rebuild_s
        self._max_partitions = max_partitions
        self._clock = clock
        self._lock = threading.Lock()

    def nearest(self, conn: psycopg.Connection[Any], query: Query) -> list[Candidate]:
        with self._lock:  # a worker's threads share the copy; lookups are short
            part = self._refreshed(conn, query)
            for _ in range(self.RETRIES):
                found = self._best(part, query)
                current = self._current(conn, part, [c.entry_id for c in found])
                if all(_usable(current.get(c.entry_id), c.state, query) for c in found):
                    return found
            return []  # the table changes faster than this copy follows: no answer this time

    def _best(self, part: _Partition, query: Query) -> list[Candidate]:
        """The most similar usable ready and pending entries, as this copy knows them."""
        if not part.vectors:
            return []
        ids, matrix = part.matrix()
        similarities = matrix @ query.vector
        found: dict[str, Candidate] = {}
        for i in np.argsort(-similarities):
            row = part.rows[ids[i]]
            if row.state in found or not _usable(row, row.state, query):
                continue
            found[row.state] = Candidate(ids[i], row.job_id, row.state, float(similarities[i]))
            if len(found) == 2:
                break
        return list(found.values())

    def _refreshed(self, conn: psycopg.Connection[Any], query: Query) -> _Partition:
        key = (query.tenant_id, query.scope, query.model, int(query.vector.shape[0]))
        part = self._parts.get(key)
        now = self._clock()
        if part is None or now - part.built_at > self._rebuild_s:
            part = _Partition(built_at=now)  # from scratch: rows deleted since are gone
            self._parts[key] = part
        self._parts.move_to_end(key)
        while len(self._parts) > self._max_partitions:
            self._parts.popitem(last=False)
        params = {**_params(query), "seen": part.seen}
        for entry_id, job_id, state, priority, expires_at, embedding, version in conn.execute(
            _CHANGED, params
        ):
            part.put(int(entry_id), _Row(job_id, state, priority, expires_at), unit(embedding))
            part.seen = max(part.seen, int(version))
        return part

    def _current(
        self, conn: psycopg.Connection[Any], part: _Partition, ids: list[int]
    ) -> dict[int, _Row]:
        """The candidates as the table has them now (deleted ones leave the copy)."""
        rows = {
            int(entry_id): _Row(job_id, state, priority, expires_at)
            for entry_id, job_id, state, priority, expires_at in conn.execute(_STILL, {"ids": ids})
        }
        for entry_id in ids:
            if entry_id not in rows:
                part.drop(entry_id)
        return rows


def _usable(row: _Row | None, state: str, query: Query) -> bool:
    """An entry (as read) that may answer ``query`` in ``state``."""
    if row is None or row.state != state:
        return False
    if state == "ready":
        return row.expires_at is not None and row.expires_at > datetime.now(UTC)
    return row.job_id != query.exclude_job and row.priority in query.waitable


def has_pgvector(conn: psycopg.Connection[Any]) -> bool:
    return (
        conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is not None
    )


def choose_index(conn: psycopg.Connection[Any], setting: str) -> SemanticIndex:
    """pgvector when the database has it (``auto``), else the in-process index; a setting of
    ``pgvector`` on a database without it falls back too, loudly."""
    if setting == IN_PROCESS:
        return InProcessIndex()
    if has_pgvector(conn):
        return PgvectorIndex()
    if setting == PGVECTOR:
        log.error("SWITCHBOARD_CACHE_SEMANTIC_INDEX=pgvector, but the database has no pgvector")
    return InProcessIndex()
