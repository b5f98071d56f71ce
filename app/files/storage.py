"""An uploaded file's bytes in Postgres: ``file_chunks`` rows of 1 MiB, written as the upload
is read and read back one chunk at a time, so no file is ever held whole in memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.batches.input import numbered_lines
from app.db.tables import FileChunkRow, file_chunks
from app.errors import InvalidInput

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Stored:
    bytes: int
    lines: int  # non-blank lines: what a batch reads as requests


def store(
    session: Session, file_id: str, source: BinaryIO, *, max_bytes: int, max_lines: int
) -> Stored:
    """Copy ``source`` into the file's chunks in this session's transaction, counting its
    lines as it goes; past ``max_bytes`` (413) or ``max_lines`` (400) the caller's transaction
    rolls back and nothing stays."""
    size = 0

    def blocks() -> Iterator[bytes]:
        nonlocal size
        seq = 0
        while block := source.read(CHUNK_BYTES):
            size += len(block)
            if size > max_bytes:
                raise InvalidInput(
                    f"the file is larger than {max_bytes} bytes",
                    code="file_too_large",
                    param="file",
                    http_status=413,
                )
            session.execute(insert(file_chunks).values(file_id=file_id, seq=seq, data=block))
            seq += 1
            yield block

    lines = 0
    for _ in numbered_lines(blocks()):
        lines += 1
        if lines > max_lines:
            raise InvalidInput(
                f"the file has more than {max_lines} lines; a batch holds at most {max_lines} "
                "requests",
                code="too_many_lines",
                param="file",
            )
    return Stored(size, lines)


def chunks(session: Session, file_id: str) -> Iterator[bytes]:
    """The file's bytes, one chunk per query."""
    query = select(FileChunkRow.data).where(FileChunkRow.file_id == file_id)
    seq = 0
    while (data := session.scalar(query.where(FileChunkRow.seq == seq))) is not None:
        yield data
        seq += 1
