"""Reading batches back: one, a page of them, their finished jobs, in OpenAI's shapes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from app.batches.lifecycle import ENDED_VALUES
from app.db.tables import BatchRow, JobRow
from app.errors import NotFound
from app.jobs.states import TERMINAL
from app.ledger.cost import format_usd


def get_batch(session: Session, batch_id: str, *, tenant_id: str | None) -> BatchRow:
    """The batch, if it exists and belongs to ``tenant_id`` (``None``: any tenant's)."""
    batch = session.get(BatchRow, batch_id)
    if batch is None or (tenant_id is not None and batch.tenant_id != tenant_id):
        raise NotFound(f"no batch {batch_id!r}", code="batch_not_found")
    return batch


def list_batches(
    session: Session, *, tenant_id: str | None, after: str | None, limit: int
) -> tuple[list[BatchRow], bool]:
    """Newest first (ids sort by creation time); ``after`` is the last id of the page before."""
    query = select(BatchRow)
    if tenant_id is not None:
        query = query.where(BatchRow.tenant_id == tenant_id)
    if after is not None:
        query = query.where(BatchRow.id < after)
    rows = list(session.scalars(query.order_by(BatchRow.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def shown_files(batch: BatchRow) -> tuple[str | None, str | None]:
    """The batch's output and error file ids, once it has ended with lines for them."""
    if batch.status not in ENDED_VALUES:
        return None, None
    output = batch.output_file_id if batch.succeeded else None
    error = batch.error_file_id if batch.failed + batch.cancelled else None
    return output, error


def batch_object(batch: BatchRow, *, job_ids: list[str] | None = None) -> dict[str, Any]:
    """The batch in OpenAI's shape (unix-second timestamps, ``request_counts``, ``usage``)."""
    output_file_id, error_file_id = shown_files(batch)
    body: dict[str, Any] = {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "model": None,
        "errors": batch.errors,
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": batch.status,
        "output_file_id": output_file_id,
        "error_file_id": error_file_id,
        "created_at": unix(batch.created_at),
        "in_progress_at": unix(batch.in_progress_at),
        "expires_at": unix(batch.expires_at),
        "finalizing_at": unix(batch.finalizing_at),
        "completed_at": unix(batch.completed_at),
        "failed_at": unix(batch.failed_at),
        "expired_at": unix(batch.expired_at),
        "cancelling_at": unix(batch.cancelling_at),
        "cancelled_at": unix(batch.cancelled_at),
        "request_counts": {
            "total": batch.total,
            "completed": batch.succeeded,
            "failed": batch.failed,
        },
        "usage": {
            "input_tokens": batch.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": batch.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": batch.input_tokens + batch.output_tokens,
        },
        "metadata": batch.metadata_ or None,
        "priority": batch.priority,
        "cost_usd": format_usd(batch.cost_usd) or "0",
    }
    if job_ids is not None:
        body["job_ids"] = job_ids
    return body


_TERMINAL = [s.value for s in TERMINAL]
# A result line never reads its job's request, often the largest column (an embedding job's
# inputs, a long prompt): it is left in the database.
_WITHOUT_REQUEST = defer(JobRow.request, raiseload=True)


def result_page(
    session: Session, batch_id: str, *, after: str | None, limit: int
) -> tuple[list[JobRow], bool]:
    """Finished jobs of the batch in id order, after the cursor; and whether more follow."""
    query = (
        select(JobRow)
        .options(_WITHOUT_REQUEST)
        .where(JobRow.batch_id == batch_id, JobRow.status.in_(_TERMINAL))
        .order_by(JobRow.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(JobRow.id > after)
    rows = list(session.scalars(query))
    return rows[:limit], len(rows) > limit


def iter_results(
    session: Session, batch_id: str, statuses: Sequence[str] = tuple(_TERMINAL)
) -> Iterator[JobRow]:
    """The batch's jobs in these statuses, in id order, streamed from one server-side cursor
    (a 50,000-job batch is never held whole)."""
    query = (
        select(JobRow)
        .options(_WITHOUT_REQUEST)
        .where(JobRow.batch_id == batch_id, JobRow.status.in_(list(statuses)))
        .order_by(JobRow.id)
        .execution_options(yield_per=500)
    )
    for job in session.scalars(query):
        yield job
        session.expunge(job)
