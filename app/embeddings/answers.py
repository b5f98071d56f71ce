"""A succeeded embedding job as OpenAI's ``/v1/embeddings`` answer (serialise it with
``app.embeddings.vectors.dumps``: the vectors stay numpy rows)."""

from __future__ import annotations

from typing import Any

from app.db.tables import JobRow
from app.embeddings.vectors import Encoding, Matrix, items


def embedding_list(job: JobRow, matrix: Matrix, encoding: Encoding) -> dict[str, Any]:
    """OpenAI's ``list`` of ``embedding`` items, one per input in input order; ``model`` is
    the model that served, ``usage`` its input tokens (embeddings have no output)."""
    tokens = job.input_tokens or 0
    return {
        "object": "list",
        "data": items(matrix, encoding),
        "model": job.served_model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
