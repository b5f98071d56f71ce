"""A finished request of a batch as one line of OpenAI's output or error file.

    succeeded                        output  response {status_code: 200, request_id, body}
    failed on the provider's answer  error   response {status_code ≥ 400, request_id,
                                             body: {error}}, as the endpoint answers
    not executed (cancelled, window  error   response null, error {code, message}
    expired)

A succeeded line's body is what the batch's endpoint answers for the same job, written by that
endpoint's own renderer (the table in app/batches/kinds.py): a ``chat.completion``, a
``text_completion``, or an embeddings ``list``. The HTTP status and error body of a failed
request are exactly what ``POST /v1/chat/completions`` (and the other OpenAI endpoints, through
the same app/chat/answers.py) answers for the same job, so a caller handles a batch's failures
the way it handles interactive ones. Lines are rendered from the job rows whenever they are
read; a finished job never changes, so neither does its line. A finish reason is OpenAI's
(``end_turn`` is ``stop``), so OpenAI's own types parse every body.

An embeddings batch's vectors are read from ``embeddings`` a group of jobs at a time (one query
per group, with the encoding each line asked for), the group cut at ``VECTOR_BYTES_PER_READ``:
a 50,000-line file streams in bounded memory. No line needs its job's ``request`` (often the
largest column), so the readers leave it unloaded. Serialise lines with
``app.embeddings.vectors.dumps`` (vectors stay numpy rows).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.batches.kinds import EndpointKind, Vectors, endpoint_kind
from app.batches.stop import EXPIRED
from app.chat.answers import failure
from app.db.tables import EmbeddingRow, JobRow
from app.embeddings.vectors import FLOAT32, unpack
from app.ledger.cost import format_usd
from app.routing.decision import DEADLINE

# Vectors held at once while lines are written (a group holds at least one job, whatever its
# size), and jobs whose vectors are read in one query.
VECTOR_BYTES_PER_READ = 32 * 1024 * 1024
JOBS_PER_READ = 500

# A request that never got an answer from a model: no HTTP response to show.
_NOT_EXECUTED = {
    "cancelled": ("cancelled", "This request was cancelled before it was executed."),
}


def result_lines(
    session: Session, endpoint: str, jobs: Iterable[JobRow]
) -> Iterator[dict[str, Any]]:
    """The jobs' lines, in the order given, for a batch to ``endpoint``: each in the output
    file's shape if it succeeded, else the error file's."""
    kind = endpoint_kind(endpoint)
    if not kind.vectors:
        for job in jobs:
            yield result_line(job, kind)
        return
    for group in _groups(jobs):
        vectors = _vectors(session, [job.id for job in group if _succeeded(job)])
        for job in group:
            yield result_line(job, kind, vectors.get(job.id))


def result_line(job: JobRow, kind: EndpointKind, vectors: Vectors | None = None) -> dict[str, Any]:
    """The job's line: in the output file if it succeeded, else in the error file."""
    if _succeeded(job):
        return output_line(job, kind.answer(job, vectors))
    return error_line(job)


def output_line(job: JobRow, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": job.id,
        "custom_id": job.custom_id,
        "response": {"status_code": 200, "request_id": job.id, "body": body},
        "error": None,
        "cost_usd": format_usd(job.cost_usd) or "0",
    }


def error_line(job: JobRow) -> dict[str, Any]:
    line: dict[str, Any] = {"id": job.id, "custom_id": job.custom_id}
    if job.status == "cancelled" or job.error_class == DEADLINE:
        if job.error_class == DEADLINE:
            code, message = EXPIRED.code, EXPIRED.message
        elif job.error_class is not None:
            code, message = job.error_class, job.error_message or job.error_class
        else:
            code, message = _NOT_EXECUTED["cancelled"]
        line.update(response=None, error={"code": code, "message": message})
        return line
    status, body = failure(job)
    line.update(response={"status_code": status, "request_id": job.id, "body": body}, error=None)
    if job.cost_usd is not None:
        line["cost_usd"] = format_usd(job.cost_usd)
    return line


def _succeeded(job: JobRow) -> bool:
    return job.status == "succeeded" and job.result is not None


def _groups(jobs: Iterable[JobRow]) -> Iterator[list[JobRow]]:
    """``jobs`` in order, cut so that a group's vectors stay under ``VECTOR_BYTES_PER_READ``
    (what each job's ``result`` says it has: ``count`` × ``dimensions`` float32)."""
    group: list[JobRow] = []
    held = 0
    for job in jobs:
        size = _vector_bytes(job)
        if group and (held + size > VECTOR_BYTES_PER_READ or len(group) == JOBS_PER_READ):
            yield group
            group, held = [], 0
        group.append(job)
        held += size
    if group:
        yield group


_ENCODING = JobRow.request["encoding_format"].astext  # kept by app.batches.kinds


def _vectors(session: Session, job_ids: list[str]) -> dict[str, Vectors]:
    """The jobs' vectors and the encoding each line asked for, in one query."""
    if not job_ids:
        return {}
    rows = session.execute(
        select(
            EmbeddingRow.job_id,
            EmbeddingRow.vectors,
            EmbeddingRow.count,
            EmbeddingRow.dimensions,
            _ENCODING,
        )
        .join(JobRow, JobRow.id == EmbeddingRow.job_id)
        .where(EmbeddingRow.job_id.in_(job_ids))
    )
    return {
        job_id: Vectors(
            unpack(bytes(data), count, dimensions), "base64" if asked == "base64" else "float"
        )
        for job_id, data, count, dimensions, asked in rows
    }


def _vector_bytes(job: JobRow) -> int:
    if not _succeeded(job):
        return 0
    result = job.result or {}
    return int(result.get("count", 0)) * int(result.get("dimensions", 0)) * FLOAT32.itemsize
