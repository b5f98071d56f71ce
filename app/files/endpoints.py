"""``/v1/files``: OpenAI's Files API for batches — upload input files, read output files.

Errors come in OpenAI's shape (``type`` beside the code), so OpenAI's SDKs raise their usual
exceptions. An upload is parsed by Starlette (python-multipart), which spools the file to disk
past 1 MiB; it is then copied into Postgres a chunk at a time (app/files/storage.py), and the
body is cut off with a 413 as soon as it passes the limit, declared or not.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import Message, Receive

from app.api.auth import CurrentCaller
from app.api.deps import ReadSession, State, UnitOfWork
from app.api.errors import documented
from app.api.state import ApiState
from app.batches.bodies import ExpiresAfter, FileId
from app.batches.input import validation_error
from app.chat.endpoints import OpenAIErrors
from app.db.engine import unit_of_work
from app.errors import InvalidInput
from app.files.content import content, size
from app.files.schemas import FileDeleted, FileList, FileOut
from app.files.service import (
    MAX_FILENAME_CHARS,
    Listed,
    created_at,
    delete_file,
    expires_at,
    get_file,
    list_files,
    remember_sizes,
    upload,
)

router = APIRouter(prefix="/v1/files", tags=["files"], route_class=OpenAIErrors)

FileIdPath = Annotated[str, Path(max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
# Room for the multipart framing around a file at the limit.
MULTIPART_OVERHEAD = 64 * 1024
PURPOSES = ("batch",)
_FIELDS = {"file", "purpose", "expires_after[anchor]", "expires_after[seconds]"}

_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "purpose"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "purpose": {"type": "string", "enum": list(PURPOSES)},
                        "expires_after[anchor]": {"type": "string", "enum": ["created_at"]},
                        "expires_after[seconds]": {"type": "integer"},
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    summary="Upload a batch input file (JSONL, one OpenAI batch line per line)",
    openapi_extra=_UPLOAD_DOC,
    responses={200: {"model": FileOut}, **documented(413, 415)},
)
async def create_file(request: Request, caller: CurrentCaller, state: State) -> FileOut:
    limit = state.settings.max_file_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise _too_large(limit)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        raise InvalidInput(
            f"unsupported content type {media!r}: upload the file as multipart/form-data",
            code="unsupported_media_type",
            http_status=415,
        )
    bounded = Request(request.scope, _bounded(request.receive, limit + MULTIPART_OVERHEAD, limit))
    form = await bounded.form(max_files=1, max_fields=len(_FIELDS))
    try:
        file, expiry = _fields(dict(form.multi_items()), form.getlist("file"))
        return await run_in_threadpool(_store, state, caller.tenant_id, file, expiry)
    finally:
        await form.close()


def _fields(fields: dict[str, Any], given: list[Any]) -> tuple[UploadFile, int | None]:
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", param=unknown[0])
    purpose = fields.get("purpose")
    if purpose is None:
        raise InvalidInput(
            "give `purpose`: 'batch'", code="missing_required_parameter", param="purpose"
        )
    if purpose not in PURPOSES:
        raise InvalidInput(
            f"purpose {purpose!r} is not supported: this gateway stores files for batches "
            "(purpose 'batch')",
            code="invalid_purpose",
            param="purpose",
        )
    if len(given) != 1 or not isinstance(given[0], UploadFile):
        raise InvalidInput(
            "give one `file`, uploaded as a file (with a filename)",
            code="missing_required_parameter" if not given else "invalid_request",
            param="file",
        )
    anchor, seconds = fields.get("expires_after[anchor]"), fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return given[0], None
    try:
        expiry = ExpiresAfter.model_validate({"anchor": anchor, "seconds": seconds})
    except ValidationError as err:
        raise validation_error(err, prefix="expires_after") from None
    return given[0], expiry.seconds


def _store(state: ApiState, tenant_id: str, file: UploadFile, expiry: int | None) -> FileOut:
    with unit_of_work(state.sessions) as session:
        row = upload(
            session,
            tenant_id=tenant_id,
            filename=_filename(file.filename),
            source=file.file,
            expires_after_s=expiry,
            max_bytes=state.settings.max_file_bytes,
            max_lines=state.settings.max_batch_requests,
        )
        return file_out(Listed(row, None), row.bytes or 0)


def _filename(given: str | None) -> str:
    """The upload's own name, without any path, control character or NUL; at most 255."""
    name = PurePosixPath((given or "").replace("\\", "/")).name
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = re.sub(r"\s+", " ", name).strip()[:MAX_FILENAME_CHARS]
    return name or "upload.jsonl"


def _too_large(limit: int) -> InvalidInput:
    return InvalidInput(
        f"the file is larger than {limit} bytes",
        code="file_too_large",
        param="file",
        http_status=413,
    )


def _bounded(receive: Receive, most: int, limit: int) -> Receive:
    """``receive`` that refuses a body past ``most`` bytes, however it is framed."""
    seen = 0

    async def bounded() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > most:
                raise _too_large(limit)
        return message

    return bounded


def file_out(listed: Listed, size_bytes: int) -> FileOut:
    """The file in OpenAI's shape."""
    moment = expires_at(listed)
    return FileOut(
        id=listed.file.id,
        bytes=size_bytes,
        created_at=int(created_at(listed).timestamp()),
        expires_at=int(moment.timestamp()) if moment is not None else None,
        filename=listed.file.filename,
        purpose="batch" if listed.file.purpose == "batch" else "batch_output",
    )


def _measured(state: ApiState, session: Any, found: list[Listed]) -> list[FileOut]:
    """Files in OpenAI's shape; an output file measured for the first time keeps its size."""
    sizes = {listed.file.id: size(session, listed) for listed in found}
    new = {listed.file.id: sizes[listed.file.id] for listed in found if listed.file.bytes is None}
    if new:
        with unit_of_work(state.sessions) as writer:
            remember_sizes(writer, new)
    return [file_out(listed, sizes[listed.file.id]) for listed in found]


@router.get("", summary="The tenant's files, newest first", response_model=FileList)
def read_files(
    caller: CurrentCaller,
    state: State,
    session: ReadSession,
    purpose: Annotated[Literal["batch", "batch_output"] | None, Query()] = None,
    after: Annotated[FileId | None, Query(description="The last id seen.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> FileList:
    found, more = list_files(
        session, tenant_id=caller.scope(), purpose=purpose, after=after, limit=limit, order=order
    )
    data = _measured(state, session, found)
    return FileList(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=more,
    )


@router.get("/{file_id}", summary="A file's object", response_model=FileOut)
def read_file(
    file_id: FileIdPath, caller: CurrentCaller, state: State, session: ReadSession
) -> FileOut:
    return _measured(state, session, [get_file(session, file_id, tenant_id=caller.scope())])[0]


@router.get(
    "/{file_id}/content",
    summary="A file's bytes (a batch's output and error files in OpenAI's line formats)",
    responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string"}}}}},
)
def read_content(file_id: FileIdPath, caller: CurrentCaller, state: State) -> Response:
    with state.sessions() as session:
        found = get_file(session, file_id, tenant_id=caller.scope())
    headers = {"content-disposition": _disposition(found.file.filename)}
    if found.file.kind == "upload" and found.file.bytes is not None:
        headers["content-length"] = str(found.file.bytes)
    return StreamingResponse(
        _stream(state, found), media_type="application/octet-stream", headers=headers
    )


def _disposition(filename: str) -> str:
    """``attachment`` with the name as OpenAI sends it, and RFC 6266's UTF-8 form for names
    an HTTP header cannot carry as they are."""
    plain = "".join(c if c.isascii() and c not in '"\\' else "_" for c in filename)
    header = f'attachment; filename="{plain}"'
    if plain != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


def _stream(state: ApiState, found: Listed) -> Iterator[bytes]:
    with state.sessions() as session:
        yield from content(session, found)


@router.delete("/{file_id}", summary="Delete a file", response_model=FileDeleted)
def remove_file(file_id: FileIdPath, caller: CurrentCaller, uow: UnitOfWork) -> FileDeleted:
    with uow() as session:
        delete_file(session, file_id, tenant_id=caller.scope())
    return FileDeleted(id=file_id)
