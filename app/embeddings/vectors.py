"""Vectors as the gateway keeps them: little-endian float32, one packed value per job.

A job's vectors are one ``bytea`` in ``embeddings`` (``count`` × ``dimensions`` float32,
row-major), written in the transaction that records the job's success. float32 is what the
providers compute in (OpenAI's ``base64`` encoding is float32), so nothing a caller can use
is lost, and 2,048 × 3,072 vectors are 25 MB instead of the ~120 MB a JSONB array of floats
takes. numpy turns the bytes back into rows without a Python float per value; orjson writes
float32 rows in their shortest round-trip form.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import orjson
import psycopg
from fastapi import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.tables import EmbeddingRow

if TYPE_CHECKING:
    from app.jobs.schemas import JobOut

Encoding = Literal["float", "base64"]
FLOAT32 = np.dtype("<f4")
Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Packed:
    """Vectors packed for storage."""

    count: int
    dimensions: int
    data: bytes = b""

    @property
    def summary(self) -> dict[str, int]:
        """What the job's ``result`` keeps of them."""
        return {"count": self.count, "dimensions": self.dimensions}


def pack(vectors: Sequence[Sequence[float]]) -> Packed:
    """``vectors`` as float32 bytes; ``ValueError`` if they are not all the same length."""
    lengths = {len(vector) for vector in vectors}
    if len(lengths) != 1:
        raise ValueError(f"vectors of different lengths: {sorted(lengths)}")
    matrix = np.asarray(vectors, dtype=FLOAT32)
    return Packed(matrix.shape[0], matrix.shape[1], matrix.tobytes())


def unpack(data: bytes, count: int, dimensions: int) -> Matrix:
    """The stored bytes as a read-only ``count`` × ``dimensions`` matrix (no copy)."""
    return np.frombuffer(data, dtype=FLOAT32).reshape(count, dimensions)


def items(matrix: Matrix, encoding: Encoding) -> list[dict[str, Any]]:
    """OpenAI's ``data`` items; serialise with :func:`dumps` (rows stay numpy arrays)."""
    if encoding == "base64":
        rows: list[Any] = [base64.b64encode(row.tobytes()).decode() for row in matrix]
    else:
        rows = list(matrix)
    return [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)]


def dumps(document: Any) -> bytes:
    """JSON of a document holding numpy rows (float32 printed shortest, as providers do)."""
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


_STORE = """INSERT INTO embeddings (job_id, count, dimensions, vectors)
    VALUES (%(job_id)s, %(count)s, %(dimensions)s, %(vectors)s)
    ON CONFLICT (job_id) DO UPDATE SET count = EXCLUDED.count,
        dimensions = EXCLUDED.dimensions, vectors = EXCLUDED.vectors, created_at = now()"""


def store(conn: psycopg.Connection[Any], job_id: str, packed: Packed) -> None:
    """Write a job's vectors (in the caller's transaction: the one recording its success)."""
    conn.execute(
        _STORE,
        {
            "job_id": job_id,
            "count": packed.count,
            "dimensions": packed.dimensions,
            "vectors": packed.data,
        },
    )


def load(session: Session, job_id: str) -> Matrix | None:
    """A job's vectors, or ``None`` if it has none (not an embedding job, or not finished)."""
    row = session.execute(
        select(EmbeddingRow.vectors, EmbeddingRow.count, EmbeddingRow.dimensions).where(
            EmbeddingRow.job_id == job_id
        )
    ).one_or_none()
    if row is None:
        return None
    data, count, dimensions = row
    return unpack(bytes(data), count, dimensions)


def with_vectors(session: Session, job: JobOut, encoding: Encoding) -> Response:
    """``GET /v1/jobs/{id}?vectors=…``: the job with its vectors, written straight from the
    stored bytes (a pydantic list of millions of floats would take seconds)."""
    matrix = load(session, job.id)
    document = job.model_dump(mode="json")
    if matrix is not None:
        document["embeddings"]["data"] = items(matrix, encoding)
    return Response(dumps(document), media_type="application/json")
