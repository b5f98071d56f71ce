"""Moving an orchestration on: read its steps under its row lock, apply its rules' moves.

``advance`` is idempotent and runs wherever a step may have ended: in the worker's
transaction that records a step's end (``hook``, so the next step exists the moment the one
before it is committed), and from the reconciler for steps ended elsewhere (a deadline in the
queue, a cancellation; ``sweep``). The lock — taken before the step's own row is written,
always in that order — serialises concurrent branches, so the last one to end sees all the
others; each move is conditional, so running ``advance`` twice does no harm.

Whatever ``advance`` created or promoted is published only after the commit (``Progress``);
a publish that never happens leaves queued jobs the reconciler publishes again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from app.jobs.delayed import promote
from app.jobs.observer import JobEnd
from app.jobs.service import JobRef
from app.jobs.states import JobStatus
from app.ledger.record import Cancelled, record
from app.orchestration import chain, ensemble
from app.orchestration.decisions import Cancel, Create, Finish, Move, Promote, Step
from app.orchestration.events import end_event
from app.orchestration.steps import Lineage, NewStep, insert_steps

CHAIN, ENSEMBLE = "chain", "ensemble"
RUNNING = "running"


@dataclass
class Progress:
    """What to do once the transaction that advanced an orchestration committed."""

    publish: list[JobRef] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # webhook outbox rows written
    ended: list[JobEnd] = field(default_factory=list)  # steps it cancelled (for observers)
    finished: str | None = None  # the orchestration's status, if this ended it


_LOCK = "SELECT id FROM orchestrations WHERE id = %s FOR UPDATE"

_ROW = """SELECT id, kind, status, spec, tenant_id, priority, project, metadata, deadline_at,
        pending_holds, custom_id, webhook_url, notify
    FROM orchestrations WHERE id = %s FOR UPDATE"""

_STEPS = """SELECT id, step_index, step_role, status, result, error_class, error_message,
        coalesce(served_model, models[chain_index + 1]) AS model,
        coalesce(served_provider, provider) AS provider, priority, created_at,
        coalesce(input_tokens, 0) AS input_tokens, coalesce(output_tokens, 0) AS output_tokens,
        coalesce(cost_usd, 0) AS cost_usd
    FROM jobs WHERE parent_id = %s ORDER BY step_index"""

_TOTALS = """UPDATE orchestrations SET input_tokens = %(input_tokens)s,
        output_tokens = %(output_tokens)s, cost_usd = %(cost_usd)s
    WHERE id = %(id)s"""

_FINISH = """UPDATE orchestrations SET status = %(status)s, finished_at = now(),
        result = CAST(%(result)s AS jsonb), synthesis = CAST(%(synthesis)s AS jsonb),
        error_class = %(error_class)s, error_message = %(error_message)s,
        pending_holds = '{}'::jsonb
    WHERE id = %(id)s AND status = 'running'"""

_TAKE_HOLDS = """UPDATE orchestrations SET pending_holds = pending_holds - CAST(%(index)s AS text)
    WHERE id = %(id)s"""

# A reservation no step will use: given back to its window (the worst case of a step that
# never ran is not spending).
_RELEASE = """UPDATE budget_windows SET reserved_usd = reserved_usd - CAST(%(usd)s AS numeric)
    WHERE budget_id = %(budget_id)s AND window_start = CAST(%(window_start)s AS timestamptz)"""


def lock(conn: psycopg.Connection[Any], orchestration_id: str) -> None:
    """Take the orchestration's row lock, before its step's own row is written."""
    conn.execute(_LOCK, (orchestration_id,))


def advance(conn: psycopg.Connection[Any], orchestration_id: str) -> Progress:
    """Apply the orchestration's next moves in the caller's transaction (which must commit
    it); refreshes its totals whatever its status, so late steps are counted too."""
    progress = Progress()
    with conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(_ROW, (orchestration_id,)).fetchone()
        if row is None:
            return progress
        steps = [_step(r) for r in cursor.execute(_STEPS, (orchestration_id,)).fetchall()]
    _refresh_totals(conn, orchestration_id, steps)
    if row["status"] != RUNNING:
        return progress
    rules = chain.next_moves if row["kind"] == CHAIN else ensemble.next_moves
    for move in rules(row["spec"], steps):
        _apply(conn, row, move, steps, progress)
    return progress


def _apply(
    conn: psycopg.Connection[Any],
    row: dict[str, Any],
    move: Move,
    steps: list[Step],
    progress: Progress,
) -> None:
    if isinstance(move, Create):
        index = str(move.step.index)
        holds = row["pending_holds"].get(index)
        if holds is not None:
            conn.execute(_TAKE_HOLDS, {"id": row["id"], "index": index})
        step = move.step if holds is None else _with_holds(move.step, holds)
        made = insert_steps(conn, _lineage(row), [step])
        progress.publish.extend(ref for _, ref in made)
    elif isinstance(move, Promote):
        progress.publish.extend(promote(conn, move.ids))
    elif isinstance(move, Cancel):
        by_id = {s.id: s for s in steps}
        for step_id in move.ids:
            only = (JobStatus.QUEUED.value, JobStatus.WAITING.value)
            if record(conn, step_id, Cancelled(), only_from=only).moved:
                gone = by_id[step_id]
                assert gone.created_at is not None
                progress.ended.append(
                    JobEnd("cancelled", gone.provider, gone.model, gone.priority, gone.created_at)
                )
    elif isinstance(move, Finish):
        _finish(conn, row, move, progress)


def _finish(
    conn: psycopg.Connection[Any], row: dict[str, Any], move: Finish, progress: Progress
) -> None:
    status = JobStatus.SUCCEEDED if move.succeeded else JobStatus.FAILED
    conn.execute(
        _FINISH,
        {
            "id": row["id"],
            "status": status.value,
            "result": None if move.result is None else orjson.dumps(move.result).decode(),
            "synthesis": orjson.dumps(move.synthesis).decode(),
            "error_class": move.error_class,
            "error_message": move.error_message,
        },
    )
    release_holds(conn, row["pending_holds"])
    progress.finished = status.value
    if row["notify"]:
        event = end_event(conn, row["id"], status.value)
        if event is not None:
            progress.events.append(event)


def release_holds(conn: psycopg.Connection[Any], pending: dict[str, Any]) -> None:
    """Give back the reservations of steps that will never be created."""
    for holds in pending.values():
        for hold in holds:
            conn.execute(_RELEASE, hold)


def _refresh_totals(
    conn: psycopg.Connection[Any], orchestration_id: str, steps: list[Step]
) -> None:
    conn.execute(
        _TOTALS,
        {
            "id": orchestration_id,
            "input_tokens": sum(s.input_tokens for s in steps),
            "output_tokens": sum(s.output_tokens for s in steps),
            "cost_usd": sum((s.cost_usd for s in steps), start=Decimal(0)),
        },
    )


def _step(r: dict[str, Any]) -> Step:
    return Step(
        id=r["id"],
        index=r["step_index"],
        role=r["step_role"],
        status=JobStatus(r["status"]),
        result=r["result"],
        error_class=r["error_class"],
        error_message=r["error_message"],
        model=r["model"] or "",
        provider=r["provider"] or "",
        priority=r["priority"],
        created_at=r["created_at"],
        input_tokens=r["input_tokens"],
        output_tokens=r["output_tokens"],
        cost_usd=Decimal(r["cost_usd"]),
    )


def _lineage(row: dict[str, Any]) -> Lineage:
    return Lineage(
        id=row["id"],
        tenant_id=row["tenant_id"],
        priority=row["priority"],
        project=row["project"],
        metadata=row["metadata"] or {},
        deadline_at=row["deadline_at"],
        notify=bool(row["spec"].get("steps_notify", False)),
    )


def _with_holds(step: NewStep, holds: list[dict[str, Any]]) -> NewStep:
    return replace(step, holds=holds)
