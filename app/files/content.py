"""A file's content as bytes, streamed: an upload's chunks, or a finished batch's output or
error file rendered line by line from its jobs (app/batches/lines.py)."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
from sqlalchemy.orm import Session

from app.batches.lines import error_line, output_line
from app.batches.reading import iter_results
from app.files.service import Listed
from app.files.storage import chunks

# Which jobs each kind of batch file holds, and how each becomes a line.
_OUTPUT_STATUSES = ("succeeded",)
_ERROR_STATUSES = ("failed", "cancelled")


def content(session: Session, listed: Listed) -> Iterator[bytes]:
    """The file's bytes, in pieces."""
    row = listed.file
    if row.kind == "upload":
        yield from chunks(session, row.id)
        return
    assert row.batch_id is not None
    output = row.kind == "output"
    render = output_line if output else error_line
    statuses = _OUTPUT_STATUSES if output else _ERROR_STATUSES
    for job in iter_results(session, row.batch_id, statuses):
        yield orjson.dumps(render(job)) + b"\n"


def size(session: Session, listed: Listed) -> int:
    """The file's size in bytes: stored for uploads, measured by rendering for output files."""
    if listed.file.bytes is not None:
        return listed.file.bytes
    return sum(len(piece) for piece in content(session, listed))
