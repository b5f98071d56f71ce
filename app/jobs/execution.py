"""Running a claimed job: call its model, classify what went wrong, decide, record.

The worker task hands a job id to ``run_job``. Everything that moves the job goes through
``app.ledger.record`` under the claim token, and anything that must be published (a fallback
onto another provider's queue, a delayed retry) is published only after that record committed.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine

from app.db.raw import autocommit
from app.jobs.claims import Claim, claim_job
from app.jobs.delayed import DelayedJobs
from app.jobs.service import Dispatcher, JobRef
from app.ledger.cost import cost_usd
from app.ledger.record import (
    AttemptRecord,
    Failed,
    Outcome,
    Requeued,
    Retrying,
    Succeeded,
    Waiting,
    record,
)
from app.providers import get_adapter
from app.providers.errors import ProviderError
from app.providers.transport import send
from app.providers.types import ChatCall, Completion
from app.registry.service import ModelInfo, ProviderInfo, Registry, RegistryCache
from app.routing.decision import (
    DEADLINE,
    Action,
    ChainEntry,
    Decision,
    Failure,
    PastAttempt,
    RetryPolicy,
    decide,
)

log = logging.getLogger(__name__)

MAX_ERROR_MESSAGE = 1000


@dataclass
class Runtime:
    """Per-process resources the runner uses; built once per worker process."""

    engine: Engine
    registry: RegistryCache
    http: httpx.Client
    dispatcher: Dispatcher
    delayed: DelayedJobs
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    attempt_timeout_s: float = 60.0
    lease_margin_s: float = 30.0
    max_in_slot_wait_s: float = 1.0
    api_key_for: Callable[[ProviderInfo], str | None] = field(
        default=lambda provider: os.environ.get(provider.api_key_env or "") or None
    )
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    @property
    def lease_s(self) -> float:
        return self.attempt_timeout_s + self.lease_margin_s


def run_job(rt: Runtime, job_id: str) -> None:
    """Run ``job_id`` if it is still queued; a no-op for a job claimed elsewhere or finished."""
    with autocommit(rt.engine) as conn:
        claim = claim_job(conn, job_id, lease_s=rt.lease_s)
    if claim is None:
        log.debug("job %s is not queued any more; message dropped", job_id)
        return
    while claim is not None:
        claim = _attempt(rt, claim)


def _attempt(rt: Runtime, claim: Claim) -> Claim | None:
    """One provider call for ``claim``; returns the claim again to retry in this slot."""
    time_left = _time_left(claim)
    if time_left is not None and time_left <= 0:
        _finish(rt, claim, Failed(DEADLINE, "the job's deadline passed before it finished"))
        return None
    registry = rt.registry.get()
    model = registry.models[claim.model_id]
    provider = registry.provider_of(model)
    adapter = get_adapter(provider.wire_format)
    timeout = rt.attempt_timeout_s if time_left is None else min(rt.attempt_timeout_s, time_left)

    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    try:
        request = adapter.build_request(_chat_call(claim.request, model, provider, rt))
        response = send(rt.http, request, timeout=timeout)
        completion = adapter.parse_response(response)
    except ProviderError as err:
        latency_ms = round((time.perf_counter() - t0) * 1000)
        return _failed(rt, claim, registry, model, err, started_at, latency_ms)
    latency_ms = round((time.perf_counter() - t0) * 1000)
    _succeeded(rt, claim, model, completion, response.status_code, started_at, latency_ms)
    return None


def _succeeded(
    rt: Runtime,
    claim: Claim,
    model: ModelInfo,
    completion: Completion,
    http_status: int,
    started_at: datetime,
    latency_ms: int,
) -> None:
    usage = completion.usage
    cost = cost_usd(model, usage)
    attempt = AttemptRecord(
        model_id=model.id,
        provider=model.provider,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        latency_ms=latency_ms,
        decision="succeeded",
        http_status=http_status,
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cost_usd=cost,
    )
    outcome = Succeeded(
        result=result_document(completion),
        model_id=model.id,
        provider=model.provider,
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        cost_usd=cost,
        latency_ms=latency_ms,
    )
    _finish(rt, claim, outcome, attempt)


def _failed(
    rt: Runtime,
    claim: Claim,
    registry: Registry,
    model: ModelInfo,
    err: ProviderError,
    started_at: datetime,
    latency_ms: int,
) -> Claim | None:
    chain = [_chain_entry(registry, model_id) for model_id in claim.models]
    unusable = frozenset(
        i for i, model_id in enumerate(claim.models) if not _usable(registry, model_id)
    )
    history = [*_history(rt, claim), PastAttempt(claim.chain_index, err.kind)]
    decision = decide(
        Failure(err.error_kind, err.retry_after),
        chain=chain,
        index=claim.chain_index,
        history=history,
        time_left_s=_time_left(claim),
        unusable=unusable,
        jitter=rt.jitter(),
        policy=rt.policy,
    )
    attempt = AttemptRecord(
        model_id=model.id,
        provider=model.provider,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        latency_ms=latency_ms,
        decision=decision.action.value,
        decision_reason=decision.reason,
        http_status=err.status_code,
        error_class=err.kind,
        error_message=err.message[:MAX_ERROR_MESSAGE],
        retry_after_s=err.retry_after,
    )
    outcome = _outcome_for(rt, decision, err, chain)
    if not _finish(rt, claim, outcome, attempt):
        return None
    if isinstance(outcome, Retrying):
        rt.sleep(decision.delay_s)
        return claim
    return None


def _outcome_for(
    rt: Runtime, decision: Decision, err: ProviderError, chain: list[ChainEntry]
) -> Outcome:
    if decision.action is Action.RETRY:
        if decision.delay_s <= rt.max_in_slot_wait_s:
            return Retrying(lease_s=rt.lease_s + decision.delay_s)
        return Waiting(datetime.now(UTC) + timedelta(seconds=decision.delay_s))
    if decision.action is Action.FALLBACK:
        assert decision.next_index is not None
        return Requeued(decision.next_index, chain[decision.next_index].provider)
    reason = f"{decision.reason}: {err.message}"[:MAX_ERROR_MESSAGE]
    return Failed(decision.error_class or err.kind, reason)


def _finish(
    rt: Runtime, claim: Claim, outcome: Outcome, attempt: AttemptRecord | None = None
) -> bool:
    """Record ``outcome``; then publish or set aside what it implies. False if claim lost."""
    with autocommit(rt.engine) as conn:
        recorded = record(conn, claim.id, outcome, attempt=attempt, claim_token=claim.token)
    if not recorded.moved:
        log.warning("job %s: claim %d lost before recording; result dropped", claim.id, claim.token)
        return False
    if isinstance(outcome, Requeued):
        rt.dispatcher.publish([JobRef(claim.id, outcome.provider, claim.priority)])
    elif isinstance(outcome, Waiting):
        rt.delayed.add(claim.id, outcome.not_before.timestamp())
    return True


def _time_left(claim: Claim) -> float | None:
    if claim.deadline_at is None:
        return None
    return (claim.deadline_at - datetime.now(UTC)).total_seconds()


def _chain_entry(registry: Registry, model_id: str) -> ChainEntry:
    model = registry.models.get(model_id)
    if model is None:
        return ChainEntry(model_id, "", 0)
    return ChainEntry(model.id, model.provider, model.context_window)


def _usable(registry: Registry, model_id: str) -> bool:
    model = registry.models.get(model_id)
    return model is not None and model.enabled and registry.provider_of(model).enabled


_HISTORY = "SELECT model_id, error_class FROM attempts WHERE job_id = %s ORDER BY number"


def _history(rt: Runtime, claim: Claim) -> list[PastAttempt]:
    index = {model_id: i for i, model_id in enumerate(claim.models)}
    with autocommit(rt.engine) as conn:
        rows = conn.execute(_HISTORY, (claim.id,)).fetchall()
    return [PastAttempt(index.get(model_id, -1), error_class) for model_id, error_class in rows]


def _chat_call(
    request: dict[str, Any], model: ModelInfo, provider: ProviderInfo, rt: Runtime
) -> ChatCall:
    return ChatCall(
        base_url=provider.base_url,
        model=model.upstream,
        messages=request["messages"],
        api_key=rt.api_key_for(provider),
        max_tokens=request.get("max_tokens"),
        temperature=request.get("temperature"),
        top_p=request.get("top_p"),
        stop=request.get("stop"),
        tools=request.get("tools"),
        tool_choice=request.get("tool_choice"),
        response_format=request.get("response_format"),
        seed=request.get("seed"),
        user=request.get("user"),
    )


def result_document(completion: Completion) -> dict[str, Any]:
    """What the job row keeps of a completion."""
    return {
        "text": completion.text,
        "finish_reason": completion.finish_reason,
        "tool_calls": [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in completion.tool_calls
        ],
        "response_id": completion.response_id,
    }
