"""Files of the OpenAI Files API: uploads for batches, and the output and error files of
finished batches. A tenant sees only its own; an expired file is gone (404), as is a batch's
output file until the batch has ended with lines for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Literal

import psycopg
from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.orm import Session

from app.batches.lifecycle import ENDED_VALUES
from app.db.tables import BatchRow, FileRow, files
from app.errors import InvalidInput, NotFound
from app.files.storage import store
from app.ids import file_id as new_file_id

BATCH_FILE_TTL_S = 30 * 24 * 3600  # OpenAI's default for files uploaded for batches
MAX_FILENAME_CHARS = 255


@dataclass(frozen=True, slots=True)
class Listed:
    """A file and, for an output or error file, the batch it comes from."""

    file: FileRow
    batch: BatchRow | None


def upload(
    session: Session,
    *,
    tenant_id: str,
    filename: str,
    source: BinaryIO,
    expires_after_s: int | None,
    max_bytes: int,
    max_lines: int,
) -> FileRow:
    """Store an uploaded batch input file; an empty one is refused (400 ``empty_file``)."""
    now = datetime.now(UTC)
    row = FileRow(
        id=new_file_id(),
        tenant_id=tenant_id,
        purpose="batch",
        kind="upload",
        filename=filename,
        created_at=now,
        expires_at=now + timedelta(seconds=expires_after_s or BATCH_FILE_TTL_S),
    )
    session.add(row)
    session.flush()
    stored = store(session, row.id, source, max_bytes=max_bytes, max_lines=max_lines)
    if stored.lines == 0:
        raise InvalidInput(
            "the file has no requests: a batch file has one JSON request per line",
            code="empty_file",
            param="file",
        )
    row.bytes, row.lines = stored.bytes, stored.lines
    session.flush()
    return row


def _ended_at() -> ColumnElement[Any]:
    return func.coalesce(BatchRow.completed_at, BatchRow.expired_at, BatchRow.cancelled_at)


def _visible() -> ColumnElement[bool]:
    """Uploads until they expire; output files once their batch ended with lines for them,
    until they expire."""
    now = func.now()
    upload = and_(
        FileRow.kind == "upload", or_(FileRow.expires_at.is_(None), FileRow.expires_at > now)
    )
    has_lines = or_(
        and_(FileRow.kind == "output", BatchRow.succeeded > 0),
        and_(FileRow.kind == "error", BatchRow.failed + BatchRow.cancelled > 0),
    )
    kept = or_(
        FileRow.expires_after_s.is_(None),
        _ended_at() + func.make_interval(0, 0, 0, 0, 0, 0, FileRow.expires_after_s) > now,
    )
    return or_(upload, and_(BatchRow.status.in_(ENDED_VALUES), has_lines, kept))


def _query(tenant_id: str | None) -> Any:
    query = (
        select(FileRow, BatchRow)
        .outerjoin(BatchRow, BatchRow.id == FileRow.batch_id)
        .where(_visible())
    )
    if tenant_id is not None:
        query = query.where(FileRow.tenant_id == tenant_id)
    return query


def get_file(session: Session, file_id: str, *, tenant_id: str | None) -> Listed:
    """The file, if the tenant (``None``: any) can see it; else 404 ``file_not_found``."""
    found = session.execute(_query(tenant_id).where(FileRow.id == file_id)).first()
    if found is None:
        raise NotFound(f"no file {file_id!r}", code="file_not_found", param="file_id")
    return Listed(found[0], found[1])


def list_files(
    session: Session,
    *,
    tenant_id: str | None,
    purpose: str | None,
    after: str | None,
    limit: int,
    order: Literal["asc", "desc"],
) -> tuple[list[Listed], bool]:
    """A page of files in id order (ids sort by when the file was named), and whether more
    follow; ``after`` is the last id of the page before."""
    query = _query(tenant_id)
    if purpose is not None:
        query = query.where(FileRow.purpose == purpose)
    if after is not None:
        query = query.where(FileRow.id < after if order == "desc" else FileRow.id > after)
    ordered = FileRow.id.desc() if order == "desc" else FileRow.id.asc()
    rows = [Listed(f, b) for f, b in session.execute(query.order_by(ordered).limit(limit + 1))]
    return rows[:limit], len(rows) > limit


def delete_file(session: Session, file_id: str, *, tenant_id: str | None) -> None:
    """Delete the file (an upload's bytes go with it); a batch keeps naming the ids of its
    files, which then answer 404, as OpenAI's do."""
    get_file(session, file_id, tenant_id=tenant_id)
    session.execute(delete(files).where(files.c.id == file_id))


def remember_sizes(session: Session, sizes: dict[str, int]) -> None:
    """Keep what output files measured: a finished batch's files never change."""
    for file_id, size in sizes.items():
        session.execute(
            files.update().where(files.c.id == file_id, files.c.bytes.is_(None)).values(bytes=size)
        )


_PURGE = """
DELETE FROM files WHERE id IN (
    SELECT id FROM files WHERE kind = 'upload' AND expires_at < now()
    ORDER BY expires_at LIMIT %(limit)s)"""


def purge_expired(conn: psycopg.Connection[Any], *, limit: int = 100) -> int:
    """Delete uploads past their expiry, with their bytes; how many went. (They answer 404
    from the moment they expire; this frees their storage.)"""
    return conn.execute(_PURGE, {"limit": limit}).rowcount


def created_at(listed: Listed) -> datetime:
    """When the file came to be: an upload's upload, an output file's batch's end."""
    batch = listed.batch
    if batch is None:
        return listed.file.created_at
    ended = batch.completed_at or batch.expired_at or batch.cancelled_at
    return ended or listed.file.created_at


def expires_at(listed: Listed) -> datetime | None:
    row = listed.file
    if row.kind == "upload":
        return row.expires_at
    if row.expires_after_s is None:
        return None
    return created_at(listed) + timedelta(seconds=row.expires_after_s)
