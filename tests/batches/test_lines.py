"""An embeddings batch's lines read their vectors in bulk while its jobs stream from one cursor:
one query per group of jobs, never one per line, groups cut to hold a bounded number of bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from app.batches import lines
from app.batches.reading import iter_results
from app.embeddings.vectors import dumps
from tests.batches.conftest import Tenant
from tests.batches.test_batch_kinds import EMBEDDINGS, SMALL, embedding_line, texts

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]

JOBS, INPUTS, DIMENSIONS = 12, 3, 768
JOB_BYTES = INPUTS * DIMENSIONS * 4  # float32


@pytest.fixture
def vector_reads(engine: Engine) -> Iterator[list[str]]:
    """The statements that read ``embeddings``, as the database receives them."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM embeddings" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    yield seen
    event.remove(engine, "before_cursor_execute", listen)


@pytest.fixture
def finished(tenant: Tenant) -> str:
    """A completed embeddings batch of ``JOBS`` lines."""
    batch = tenant.run(
        [embedding_line(f"r{i:02}", SMALL, texts(INPUTS)) for i in range(JOBS)],
        endpoint=EMBEDDINGS,
    )
    ended = tenant.wait(batch.id)
    assert ended.status == "completed"
    assert ended.output_file_id is not None
    return ended.id


def rendered(db: Session, batch_id: str) -> list[bytes]:
    return [
        dumps(line)
        for line in lines.result_lines(db, EMBEDDINGS, iter_results(db, batch_id, ("succeeded",)))
    ]


def test_one_vector_query_serves_a_group_of_lines(
    db: Session, finished: str, vector_reads: list[str], tenant: Tenant
) -> None:
    got = rendered(db, finished)
    assert len(vector_reads) == 1  # twelve small jobs: one group
    output = tenant.sdk.batches.retrieve(finished).output_file_id or ""
    assert got == tenant.sdk.files.content(output).content.splitlines()  # as the file serves


def test_groups_are_cut_at_the_bytes_they_would_hold(
    db: Session,
    finished: str,
    vector_reads: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    whole = rendered(db, finished)
    vector_reads.clear()
    monkeypatch.setattr(lines, "VECTOR_BYTES_PER_READ", 2 * JOB_BYTES + 1)
    assert rendered(db, finished) == whole  # the same lines, in the same order
    assert len(vector_reads) == JOBS // 2
    vector_reads.clear()
    monkeypatch.setattr(lines, "VECTOR_BYTES_PER_READ", 1)  # a job bigger than the budget
    assert rendered(db, finished) == whole
    assert len(vector_reads) == JOBS
    assert {orjson.loads(line)["custom_id"] for line in whole} == {f"r{i:02}" for i in range(JOBS)}
