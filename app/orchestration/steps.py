"""An orchestration's steps as jobs: the rows that make them, and the requests they carry.

Every step, branch and judge is an ordinary chat job (its own queue, claim, attempts,
fallbacks, tokens and cost) with ``parent_id``, ``step_index`` and ``step_role`` linking it
to its orchestration. It inherits the orchestration's tenant, priority, project, metadata and
deadline, and runs on the models planned for it at submission (``plans``). The API inserts the
first ones with the orchestration; a worker inserts each later one in the transaction that
recorded the end of the step before it (``progress``). Both go through ``insert_steps``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg

from app.ids import job_id as new_job_id
from app.jobs.service import JobRef
from app.jobs.states import JobStatus
from app.orchestration.templates import render

SYSTEM, USER = "system", "user"


@dataclass(frozen=True, slots=True)
class Lineage:
    """What every step of one orchestration inherits from it."""

    id: str
    tenant_id: str
    priority: str
    project: str | None
    metadata: Mapping[str, str]
    deadline_at: datetime | None
    notify: bool  # the tenant's default webhook applies to its jobs


@dataclass(frozen=True, slots=True)
class NewStep:
    """A step to insert: where it stands, what it asks, on which models."""

    index: int
    role: str
    request: dict[str, Any]
    plan: Mapping[str, Any]  # {"models": [...], "providers": [...], "routing": {...} | None}
    holds: list[dict[str, Any]] | None = None  # its budget reservations (taken at submission)
    metadata: Mapping[str, str] | None = None  # added to the orchestration's
    not_before: datetime | None = None  # a hedged branch: waiting until then
    start: int = 0  # the chain position to start on (past an open breaker)


def messages(system: str | None, prompt: str, values: Mapping[str, str]) -> list[dict[str, str]]:
    """A step's conversation: its rendered system message, if any, and user message."""
    rendered = [{"role": USER, "content": render(prompt, values)}]
    if system is not None:
        rendered.insert(0, {"role": SYSTEM, "content": render(system, values)})
    return rendered


_INSERT = """INSERT INTO jobs (id, tenant_id, kind, status, priority, request, models, chain_index,
        provider, metadata, project, notify, budget_holds, created_at, queued_at, not_before,
        deadline_at, routing, parent_id, step_index, step_role)
    VALUES (%(id)s, %(tenant_id)s, 'chat', %(status)s, %(priority)s, CAST(%(request)s AS jsonb),
        %(models)s, %(start)s, %(provider)s, CAST(%(metadata)s AS jsonb), %(project)s,
        %(notify)s, CAST(%(holds)s AS jsonb), now(), now(), %(not_before)s, %(deadline_at)s,
        CAST(%(routing)s AS jsonb), %(parent_id)s, %(index)s, %(role)s)"""


def insert_steps(
    conn: psycopg.Connection[Any], lineage: Lineage, steps: Sequence[NewStep]
) -> list[tuple[str, JobRef]]:
    """Insert ``steps`` as jobs of the orchestration (queued, or waiting until their
    ``not_before``), in the caller's transaction; their ids and what to publish after it
    commits (waiting ones are published by the delayed set instead)."""
    made: list[tuple[str, JobRef]] = []
    for step in steps:
        job_id = new_job_id()
        models = list(step.plan["models"])
        provider = step.plan["providers"][step.start]
        routing = step.plan.get("routing")
        waiting = step.not_before is not None
        conn.execute(
            _INSERT,
            {
                "id": job_id,
                "tenant_id": lineage.tenant_id,
                "status": (JobStatus.WAITING if waiting else JobStatus.QUEUED).value,
                "priority": lineage.priority,
                "request": _json(step.request),
                "models": models,
                "start": step.start,
                "provider": provider,
                "metadata": _json({**lineage.metadata, **(step.metadata or {})}),
                "project": lineage.project,
                "notify": lineage.notify,
                "holds": None if step.holds is None else _json(step.holds),
                "not_before": step.not_before,
                "deadline_at": lineage.deadline_at,
                "routing": None if routing is None else _json(routing),
                "parent_id": lineage.id,
                "index": step.index,
                "role": step.role,
            },
        )
        made.append((job_id, JobRef(job_id, provider, lineage.priority)))
    return made


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
