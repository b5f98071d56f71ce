"""A file's content as bytes, streamed: an upload's chunks, or a finished batch's output or
error file rendered line by line from its jobs (app/batches/lines.py)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.orm import Session

from app.batches.lines import result_lines
from app.batches.reading import iter_results
from app.db.tables import BatchRow
from app.embeddings.vectors import dumps
from app.files.service import Listed
from app.files.storage import chunks

# Which jobs each kind of batch file holds.
_OUTPUT_STATUSES = ("succeeded",)
_ERROR_STATUSES = ("failed", "cancelled")


def content(session: Session, listed: Listed) -> Iterator[bytes]:
    """The file's bytes, in pieces."""
    row = listed.file
    if row.kind == "upload":
        yield from chunks(session, row.id)
        return
    assert row.batch_id is not None
    statuses = _OUTPUT_STATUSES if row.kind == "output" else _ERROR_STATUSES
    endpoint = session.get_one(BatchRow, row.batch_id).endpoint
    jobs = iter_results(session, row.batch_id, statuses)
    for line in result_lines(session, endpoint, jobs):
        yield dumps(line) + b"\n"


def size(session: Session, listed: Listed) -> int:
    """The file's size in bytes: stored for uploads, measured by rendering for output files."""
    if listed.file.bytes is not None:
        return listed.file.bytes
    return sum(len(piece) for piece in content(session, listed))
