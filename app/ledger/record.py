"""Recording what happened to a job: one statement per outcome, exactly once per claim.

Each outcome is a single SQL statement: the job's conditional UPDATE (it must still be
``running`` under the caller's claim token), the attempt row, and — for terminal outcomes —
the batch's counters and terminal status. If the claim was lost (a lease expired and another
worker took the job), the UPDATE matches nothing, so neither the attempt nor the counters are
written: a result is recorded at most once, and the partial unique index on succeeded attempts
makes "paid twice" impossible even in principle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from app.batches.lifecycle import ENDED_NOW, status_assignments
from app.jobs.states import TERMINAL, JobStatus, sources_for


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    model_id: str
    provider: str
    started_at: datetime
    finished_at: datetime
    latency_ms: int
    decision: str
    decision_reason: str | None = None
    key_id: str | None = None
    http_status: int | None = None
    error_class: str | None = None
    error_message: str | None = None
    retry_after_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: Decimal | None = None
    skipped: bool = False  # no call was made (the target's breaker was open, ...)

    @property
    def billed(self) -> bool:
        """The provider counted tokens for this attempt (a success, or a filtered answer)."""
        return self.input_tokens is not None and self.cost_usd is not None

    @property
    def status(self) -> str:
        if self.skipped:
            return "skipped"
        return "succeeded" if self.error_class is None else "failed"


@dataclass(frozen=True, slots=True)
class Succeeded:
    """The job's answer; its tokens and cost come with the attempt that produced it."""

    result: dict[str, Any]
    model_id: str
    provider: str
    cached_tokens: int
    latency_ms: int


@dataclass(frozen=True, slots=True)
class Served:
    """The job's answer, reused from the response cache (app/cache): no attempt, nothing
    billed; it carries its source job's answer and usage, and what that job cost."""

    result: dict[str, Any]
    model_id: str
    provider: str
    input_tokens: int | None
    output_tokens: int | None
    cached_tokens: int | None
    cache: str  # "exact:hit" | "semantic:hit"
    source_job_id: str
    saved_usd: Decimal
    similarity: float | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    error_class: str
    error_message: str


@dataclass(frozen=True, slots=True)
class Retrying:
    """The same worker tries again in-slot; the job stays running under a longer lease."""

    lease_s: float


@dataclass(frozen=True, slots=True)
class Waiting:
    not_before: datetime


@dataclass(frozen=True, slots=True)
class Requeued:
    """Fall back: the job moves to another model and that model's provider queue."""

    chain_index: int
    provider: str


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The caller cancelled a job no worker holds."""


Outcome = Succeeded | Served | Failed | Retrying | Waiting | Requeued | Cancelled


@dataclass(frozen=True, slots=True)
class Recorded:
    moved: bool  # False: the claim was lost, nothing was written
    batch_id: str | None = None
    batch_status: str | None = None
    webhook_events: tuple[str, ...] = ()  # outbox rows written with this outcome, to publish


_JOB_SET: dict[str, str] = {
    "Succeeded": """status = 'succeeded', finished_at = now(), lease_until = NULL,
        result = CAST(%(result)s AS jsonb), served_model = %(served_model)s,
        served_provider = %(served_provider)s, cached_tokens = %(cached_tokens)s,
        latency_ms = %(job_latency_ms)s, error_class = NULL, error_message = NULL""",
    "Served": """status = 'succeeded', finished_at = now(), lease_until = NULL,
        not_before = NULL, result = CAST(%(result)s AS jsonb), served_model = %(served_model)s,
        served_provider = %(served_provider)s, input_tokens = %(hit_input_tokens)s,
        output_tokens = %(hit_output_tokens)s, cached_tokens = %(cached_tokens)s, cost_usd = 0,
        latency_ms = NULL, error_class = NULL, error_message = NULL, cache = %(cache)s,
        cache_source_job_id = %(cache_source_job_id)s, cache_similarity = %(similarity)s,
        cost_saved_usd = %(saved_usd)s""",
    "Failed": """status = 'failed', finished_at = now(), lease_until = NULL,
        error_class = %(job_error_class)s, error_message = %(job_error_message)s""",
    "Retrying": "lease_until = now() + make_interval(secs => %(lease_s)s)",
    "Waiting": "status = 'waiting', not_before = %(not_before)s, lease_until = NULL",
    "Requeued": """status = 'queued', queued_at = now(), chain_index = %(chain_index)s,
        provider = %(next_provider)s, lease_until = NULL""",
    "Cancelled": """status = 'cancelled', finished_at = now(), lease_until = NULL""",
}
_TARGET: dict[str, JobStatus] = {
    "Succeeded": JobStatus.SUCCEEDED,
    "Served": JobStatus.SUCCEEDED,
    "Failed": JobStatus.FAILED,
    "Retrying": JobStatus.RUNNING,
    "Waiting": JobStatus.WAITING,
    "Requeued": JobStatus.QUEUED,
    "Cancelled": JobStatus.CANCELLED,
}

# What an attempt was billed is added to the job's totals (a filtered answer is paid for too).
_BILL = """, input_tokens = coalesce(input_tokens, 0) + %(input_tokens)s,
        output_tokens = coalesce(output_tokens, 0) + coalesce(CAST(%(output_tokens)s AS int), 0),
        cost_usd = coalesce(cost_usd, 0) + %(attempt_cost_usd)s"""

_ATTEMPT = """, a AS (
    INSERT INTO attempts (job_id, number, model_id, provider, key_id, status, started_at,
        finished_at, latency_ms, http_status, error_class, error_message, retry_after_s,
        decision, decision_reason, input_tokens, output_tokens, cost_usd)
    SELECT j.id, j.attempt_count, %(model_id)s, %(provider)s, %(key_id)s, %(attempt_status)s,
        %(started_at)s, %(finished_at)s, %(latency_ms)s, %(http_status)s, %(error_class)s,
        %(error_message)s, %(retry_after_s)s, %(decision)s, %(decision_reason)s,
        %(input_tokens)s, %(output_tokens)s, %(attempt_cost_usd)s
    FROM j
)"""

_BATCH = f""", b AS (
    UPDATE batches SET
        succeeded = succeeded + %(batch_succeeded)s,
        failed = failed + %(batch_failed)s,
        cancelled = cancelled + %(batch_cancelled)s,
        input_tokens = input_tokens + %(batch_input_tokens)s,
        output_tokens = output_tokens + %(batch_output_tokens)s,
        cost_usd = cost_usd + %(batch_cost_usd)s,
        {status_assignments("%(batch_done)s")}
    FROM j WHERE batches.id = j.batch_id
    RETURNING batches.status
)"""

# The batch CTE when a job ends: it also says whether this statement finished the batch.
_BATCH_ENDING = _BATCH.replace(
    "RETURNING batches.status",
    f"""RETURNING batches.status, batches.id, batches.tenant_id, batches.webhook_url,
        {ENDED_NOW} AS ended""",
)

# Webhook outbox rows, written in the statement that ends the job (so a crash cannot lose
# them; app/webhooks/outbox.py delivers them). The tenant's default URL is read only when the
# job (or batch) has none — a CASE, so the no-webhook path of a batch job reads nothing more —
# and a batch's jobs use only their own URL: a batch's webhook gets just the batch event.
_EVENT_ID = "'msg_' || replace(CAST(gen_random_uuid() AS text), '-', '')"
_NOW_ISO = """to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""

_JOB_EVENT = f""", wj AS (
    SELECT j.*, coalesce(j.job_webhook_url, CASE WHEN j.batch_id IS NULL THEN
        (SELECT webhook_url FROM tenants WHERE id = j.job_tenant_id) END) AS url FROM j
), ej AS (
    INSERT INTO webhook_events (id, tenant_id, type, url, job_id, batch_id, payload)
    SELECT {_EVENT_ID}, wj.job_tenant_id, 'job.' || wj.job_status, wj.url, wj.id, wj.batch_id,
        jsonb_build_object('type', 'job.' || wj.job_status, 'timestamp', {_NOW_ISO},
            'data', jsonb_build_object('id', wj.id, 'status', wj.job_status,
                'batch_id', wj.batch_id, 'custom_id', wj.job_custom_id, 'model', wj.job_model,
                'cost_usd', CAST(trim_scale(wj.job_cost_usd) AS text))
            || CASE WHEN wj.job_error_class IS NULL THEN '{{}}'::jsonb ELSE jsonb_build_object(
                'error', jsonb_build_object('class', wj.job_error_class,
                    'message', wj.job_error_message)) END)
    FROM wj WHERE wj.url IS NOT NULL
    RETURNING id
)"""

# OpenAI's thin batch event: the receiver fetches the batch (``GET /v1/batches/{id}``). Any
# statement whose CTE ``b`` returns (id, tenant_id, webhook_url, status, ended) can append it.
BATCH_EVENT = f""", wb AS (
    SELECT b.*, CASE WHEN b.ended THEN coalesce(b.webhook_url,
        (SELECT webhook_url FROM tenants WHERE id = b.tenant_id)) END AS url FROM b
), eb AS (
    INSERT INTO webhook_events (id, tenant_id, type, url, batch_id, payload)
    SELECT {_EVENT_ID}, wb.tenant_id, 'batch.' || wb.status, wb.url, wb.id,
        jsonb_build_object('id', 'evt_' || replace(CAST(gen_random_uuid() AS text), '-', ''),
            'object', 'event', 'type', 'batch.' || wb.status,
            'created_at', CAST(extract(epoch FROM now()) AS bigint),
            'data', jsonb_build_object('id', wb.id))
    FROM wb WHERE wb.url IS NOT NULL
    RETURNING id
)"""
# Aliased: ``b`` updates batches FROM j, where bare names like ``status`` must stay the batch's.
_ENDING_RETURNING = """, tenant_id AS job_tenant_id, status AS job_status,
    custom_id AS job_custom_id, webhook_url AS job_webhook_url,
    error_class AS job_error_class, error_message AS job_error_message,
    coalesce(served_model, models[chain_index + 1]) AS job_model"""


# A job that ends gives back its budget reservations and pays what it really cost. ``h``
# reads the holds as they were before this statement (``j`` clears them), so they are settled
# exactly once: only the statement whose UPDATE moved the job sees a row in ``j``.
_SETTLE = """, h AS (SELECT budget_holds FROM jobs WHERE id = %(job_id)s),
s AS (
    UPDATE budget_windows w SET reserved_usd = w.reserved_usd - x.usd,
        spent_usd = w.spent_usd + coalesce(j.job_cost_usd, 0)
    FROM j, h, jsonb_to_recordset(h.budget_holds) AS x(budget_id text, window_start timestamptz,
        usd numeric)
    WHERE w.budget_id = x.budget_id AND w.window_start = x.window_start
)"""


@cache
def _statement(
    outcome: str,
    with_attempt: bool,
    billed: bool,
    claimed: bool,
    only_from: tuple[str, ...] | None,
    notify: bool = True,
) -> str:
    terminal = _TARGET[outcome] in TERMINAL
    allowed = sources_for(_TARGET[outcome])
    if only_from is not None:
        allowed = [s for s in allowed if s in only_from]
    sources = ", ".join(f"'{s}'" for s in allowed)
    guard = (
        "status = 'running' AND claim_token = %(claim_token)s"
        if claimed
        else f"status IN ({sources})"
    )
    bump = "attempt_count = attempt_count + 1, " if with_attempt else ""
    bill = _BILL if billed else ""
    release = ", budget_holds = NULL" if terminal else ""
    batch = terminal or billed  # the batch's counters move when a job ends or pays
    job_event = notify and outcome in ("Succeeded", "Served", "Failed")
    batch_event = notify and terminal
    events = []
    if job_event:
        events.append("SELECT id FROM ej")
    if batch_event:
        events.append("SELECT id FROM eb")
    return (
        f"WITH j AS (UPDATE jobs SET {bump}{_JOB_SET[outcome]}{bill}{release} "
        f"WHERE id = %(job_id)s AND {guard} "
        "RETURNING id, attempt_count, batch_id, cost_usd AS job_cost_usd"
        + (_ENDING_RETURNING if job_event else "")
        + ")"
        + (_ATTEMPT if with_attempt else "")
        + (_SETTLE if terminal else "")
        + ((_BATCH_ENDING if batch_event else _BATCH) if batch else "")
        + (_JOB_EVENT if job_event else "")
        + (BATCH_EVENT if batch_event else "")
        + " SELECT (SELECT count(*) FROM j) AS moved, (SELECT batch_id FROM j) AS batch_id, "
        + ("(SELECT status FROM b)" if batch else "NULL")
        + " AS batch_status, "
        + (f"ARRAY({' UNION ALL '.join(events)})" if events else "NULL")
        + " AS webhook_events"
    )


def record(
    conn: psycopg.Connection[Any],
    job_id: str,
    outcome: Outcome,
    *,
    attempt: AttemptRecord | None = None,
    claim_token: int | None = None,
    only_from: tuple[str, ...] | None = None,
    notify: bool = True,
) -> Recorded:
    """Move the job to ``outcome`` (and log ``attempt``) if the caller still owns it.

    With ``claim_token`` the job must be running under that claim; without it (the
    reconciler, cancellation) it must be in a status the transition table allows — narrowed
    to ``only_from`` if given (e.g. never a job that a live worker holds).

    ``notify=False`` (the job's ``notify`` flag, read with its claim) leaves out the webhook
    outbox inserts: the hot path of a job without webhooks pays nothing for them. Callers
    that don't know the flag keep the default; the statement then decides by itself.
    """
    billed = attempt is not None and attempt.billed
    if isinstance(outcome, Succeeded) and not billed:
        raise ValueError("a success is recorded with the attempt that produced it")
    params: dict[str, Any] = {"job_id": job_id, "claim_token": claim_token}
    params.update(_outcome_params(outcome))
    if attempt is not None:
        params.update(_attempt_params(attempt))
        if billed:
            params.update(
                batch_input_tokens=attempt.input_tokens or 0,
                batch_output_tokens=attempt.output_tokens or 0,
                batch_cost_usd=attempt.cost_usd or Decimal(0),
            )
    stmt = _statement(
        type(outcome).__name__,
        attempt is not None,
        billed,
        claim_token is not None,
        only_from,
        notify,
    )
    with conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(stmt, params).fetchone()
    assert row is not None
    return Recorded(
        bool(row["moved"]),
        row["batch_id"],
        row["batch_status"],
        tuple(row["webhook_events"] or ()),
    )


def _outcome_params(outcome: Outcome) -> dict[str, Any]:
    params: dict[str, Any] = {
        "batch_done": int(isinstance(outcome, Succeeded | Served | Failed | Cancelled)),
        "batch_succeeded": int(isinstance(outcome, Succeeded | Served)),
        "batch_failed": int(isinstance(outcome, Failed)),
        "batch_cancelled": int(isinstance(outcome, Cancelled)),
        "batch_input_tokens": 0,
        "batch_output_tokens": 0,
        "batch_cost_usd": Decimal(0),
    }
    match outcome:
        case Succeeded():
            params.update(
                result=orjson.dumps(outcome.result).decode(),
                served_model=outcome.model_id,
                served_provider=outcome.provider,
                cached_tokens=outcome.cached_tokens,
                job_latency_ms=outcome.latency_ms,
            )
        case Served():
            params.update(
                result=orjson.dumps(outcome.result).decode(),
                served_model=outcome.model_id,
                served_provider=outcome.provider,
                hit_input_tokens=outcome.input_tokens,
                hit_output_tokens=outcome.output_tokens,
                cached_tokens=outcome.cached_tokens,
                cache=outcome.cache,
                cache_source_job_id=outcome.source_job_id,
                similarity=outcome.similarity,
                saved_usd=outcome.saved_usd,
            )
        case Failed():
            params.update(
                job_error_class=outcome.error_class,
                job_error_message=outcome.error_message,
            )
        case Retrying():
            params.update(lease_s=outcome.lease_s)
        case Waiting():
            params.update(not_before=outcome.not_before)
        case Requeued():
            params.update(chain_index=outcome.chain_index, next_provider=outcome.provider)
    return params


def _attempt_params(attempt: AttemptRecord) -> dict[str, Any]:
    return {
        "model_id": attempt.model_id,
        "provider": attempt.provider,
        "key_id": attempt.key_id,
        "attempt_status": attempt.status,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "latency_ms": attempt.latency_ms,
        "http_status": attempt.http_status,
        "error_class": attempt.error_class,
        "error_message": attempt.error_message,
        "retry_after_s": attempt.retry_after_s,
        "decision": attempt.decision,
        "decision_reason": attempt.decision_reason,
        "input_tokens": attempt.input_tokens,
        "output_tokens": attempt.output_tokens,
        "attempt_cost_usd": attempt.cost_usd,
    }
