"""A batch's requests read from an uploaded file: the lines are streamed from Postgres a chunk
at a time and every bad line is collected, to be reported on the failed batch."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.batches.input import BatchInput, numbered_lines, read_lines
from app.errors import InvalidInput, NotFound
from app.files.service import get_file
from app.files.storage import chunks


def read_input_file(
    session: Session, file_id: str, *, tenant_id: str, endpoint: str, limit: int
) -> BatchInput:
    """The requests of the tenant's uploaded file ``file_id`` (404 ``file_not_found`` if it is
    not the tenant's; 400 ``invalid_input_file`` if it was not uploaded for batches)."""
    try:
        found = get_file(session, file_id, tenant_id=tenant_id)
    except NotFound as err:
        err.param = "input_file_id"
        raise
    if found.file.purpose != "batch":
        raise InvalidInput(
            f"file {file_id!r} has purpose {found.file.purpose!r}; a batch reads a file "
            "uploaded with purpose 'batch'",
            code="invalid_input_file",
            param="input_file_id",
        )
    return read_lines(
        numbered_lines(chunks(session, file_id)),
        count=found.file.lines or 0,
        limit=limit,
        endpoint=endpoint,
        collect=True,
    )
