"""Running a claimed job: admit the call, make it, classify what went wrong, decide, record.

The worker task hands a job id to ``run_job``. One attempt:

1. the job's deadline; 2. the target's circuit breakers (open: route around it); 3. a key
and rate-limit tokens (none soon: set the job aside); 4. the call (``app.jobs.calls``: one
for a chat job, streamed when its caller reads it live; as many as an embedding job's inputs
need); 5. settle the tokens, report to the breakers, disable a rejected key; 6. decide
(``app.routing.decision``) and record. Everything that moves the job goes through
``app.ledger.record`` under the claim token, and whatever must be published (a fallback onto
another provider's queue, a delayed retry) is published only after that record committed.
The runtime's observer (``app.jobs.observer``) hears of each claim, admission and committed
outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from app.db.raw import autocommit, retrying
from app.embeddings.calls import call_count
from app.jobs.admission import Permit, TooLarge, Wait
from app.jobs.attempts import Stopwatch, attempt_row
from app.jobs.calls import Answer, call
from app.jobs.claims import Claim, claim_job
from app.jobs.runtime import Runtime, Target
from app.jobs.service import JobRef
from app.ledger.cost import cost_usd
from app.ledger.record import (
    AttemptRecord,
    Failed,
    Outcome,
    Recorded,
    Requeued,
    Retrying,
    Succeeded,
    Waiting,
    record,
)
from app.orchestration.hook import continuation
from app.providers.errors import AuthFailed, ErrorKind, ProviderError
from app.registry.keys import ProviderKey
from app.registry.service import ModelInfo, Registry
from app.relay.events import AttemptId
from app.relay.publisher import awaited
from app.routing.breakers import Verdict, model_target, provider_target
from app.routing.decision import (
    DEADLINE,
    Action,
    ChainEntry,
    Decision,
    Failure,
    PastAttempt,
    decide,
    first_usable,
)

log = logging.getLogger(__name__)

# Failures that say the target itself is unwell (and so count towards opening its breaker).
TARGET_FAILURES = frozenset(
    {ErrorKind.SERVER_ERROR, ErrorKind.OVERLOADED, ErrorKind.TIMEOUT, ErrorKind.UNKNOWN}
)
UNAVAILABLE_FOR_S = 600.0  # how long a model the provider says doesn't exist is skipped
CIRCUIT_OPEN = "circuit_open"
RATE_LIMIT = ErrorKind.RATE_LIMIT.value


def run_job(rt: Runtime, job_id: str) -> None:
    """Run ``job_id`` if it is still queued; a no-op for a job claimed elsewhere or finished."""
    with autocommit(rt.engine) as conn:
        claim = claim_job(conn, job_id, lease_s=rt.lease_s)
    if claim is None:
        log.debug("job %s is not queued any more; message dropped", job_id)
        return
    rt.observer.claimed(claim)
    while claim is not None:
        claim = _attempt(rt, claim)


def _attempt(rt: Runtime, claim: Claim) -> Claim | None:
    """One attempt for ``claim``; returns the claim again to retry in this slot."""
    time_left = _time_left(claim)
    if time_left is not None and time_left <= 0:
        _finish(rt, claim, Failed(DEADLINE, "the job's deadline passed before it finished"))
        return None
    registry = rt.registry.get()
    if claim.model_id not in registry.models:  # registered after this snapshot was taken?
        registry = rt.registry.current()
    chain = [_entry(registry, m) for m in claim.models]
    model = registry.models.get(claim.model_id)
    if model is None or not _usable_now(registry, model):
        _gone(rt, claim, registry, chain)
        return None
    target = Target(model, registry.provider_of(model), chain)
    watch = Stopwatch.start()  # restarted at the call: an attempt's times are the provider's

    verdict = rt.breakers.check(target.breakers) if rt.breakers else None
    if verdict is not None and not verdict.allowed:
        why = f"circuit open for {verdict.blocked_by}"
        _route_around(rt, claim, registry, target, watch, CIRCUIT_OPEN, why)
        return None
    keys = rt.keys.get().keys(target.provider.name)
    if not keys:
        hint = target.provider.api_key_env or "a key"
        err = AuthFailed(f"no API key for {target.provider.name}: set {hint} or POST /v1/keys")
        return _failed(rt, claim, registry, target, err, watch, keys, None, verdict)
    calls = call_count(claim.request, target.provider.wire_format)
    admitted = rt.admission.admit(
        target.provider, model, keys, claim.request, claim.priority, calls=calls
    )
    rt.observer.admitted(target.provider.name, admitted)
    if isinstance(admitted, TooLarge):
        _route_around(rt, claim, registry, target, watch, RATE_LIMIT, admitted.reason)
        return None
    if isinstance(admitted, Wait):
        if time_left is None or admitted.retry_in_s < time_left:
            not_before = datetime.now(UTC) + timedelta(seconds=admitted.retry_in_s)
            _finish(rt, claim, Waiting(not_before))
            return None
        reason = "no rate-limit capacity before the job's deadline"
        _route_around(rt, claim, registry, target, watch, RATE_LIMIT, reason)
        return None

    time_left = _time_left(claim)  # admission may have slept
    timeout = rt.attempt_timeout_s if time_left is None else min(rt.attempt_timeout_s, time_left)
    if timeout <= 0:
        rt.admission.settle(admitted, usage=None)
        _finish(rt, claim, Failed(DEADLINE, "the job's deadline passed before it finished"))
        return None
    watch = Stopwatch.start()
    try:
        answer = call(rt, claim, target, admitted.key, timeout=timeout)
    except ProviderError as err:
        retry_after = err.retry_after if err.error_kind is ErrorKind.RATE_LIMIT else None
        rt.admission.settle(admitted, usage=None, retry_after_s=retry_after)
        return _failed(rt, claim, registry, target, err, watch, keys, admitted, verdict)
    rt.admission.settle(admitted, usage=answer.usage, seen=answer.rate_limits)
    if rt.breakers is not None and verdict is not None and (verdict.dirty or verdict.probe):
        rt.breakers.record_success(target.breakers)
    _succeeded(rt, claim, target, answer, watch, admitted)
    return None


def _succeeded(
    rt: Runtime, claim: Claim, target: Target, answer: Answer, watch: Stopwatch, permit: Permit
) -> None:
    usage = answer.usage
    attempt = attempt_row(
        target.model,
        watch,
        decision="succeeded",
        key=permit.key,
        http_status=answer.http_status,
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cost_usd=cost_usd(target.model, usage),
    )
    outcome = Succeeded(
        result=answer.result,
        model_id=target.model.id,
        provider=target.model.provider,
        cached_tokens=usage.cached_tokens,
        latency_ms=attempt.latency_ms,
    )
    store = answer.store
    _finish(rt, claim, outcome, attempt, also=None if store is None else store(claim.id))


def _failed(
    rt: Runtime,
    claim: Claim,
    registry: Registry,
    target: Target,
    err: ProviderError,
    watch: Stopwatch,
    keys: tuple[ProviderKey, ...],
    permit: Permit | None,
    verdict: Verdict | None,
) -> Claim | None:
    kind = err.error_kind
    key = permit.key if permit is not None else None
    if rt.breakers is not None:
        if kind in TARGET_FAILURES:
            rt.breakers.record_failure(target.breakers, f"{kind.value}: {err.message}")
        elif verdict is not None and (verdict.dirty or verdict.probe):
            rt.breakers.record_success(target.breakers)  # it answered: the target is up
    if kind is ErrorKind.AUTH:  # a key added or rotated since the snapshot deserves a try
        keys = rt.keys.current().keys(target.provider.name)
    decision = decide(
        Failure(kind, err.retry_after, deterministic=claim.request.get("temperature") == 0),
        chain=target.chain,
        index=claim.chain_index,
        history=[*_history(rt, claim), PastAttempt(claim.chain_index, err.kind)],
        time_left_s=_time_left(claim),
        unusable=_unusable(rt, registry, target.chain),
        other_key_available=key is not None and any(k != key for k in keys),
        jitter=rt.jitter(),
        policy=rt.policy,
    )
    if decision.disable_key and key is not None:
        rt.disable_key(key, err.message)
    if decision.mark_model_unavailable and rt.breakers is not None:
        rt.breakers.force_open(model_target(target.model.id), UNAVAILABLE_FOR_S, err.message)
    billed = {}
    if err.completion is not None:  # e.g. a filtered answer: the provider still counts it
        usage = err.completion.usage
        billed = {
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "cost_usd": cost_usd(target.model, usage),
        }
    attempt = attempt_row(
        target.model,
        watch,
        decision=decision.action.value,
        reason=decision.reason,
        key=key,
        http_status=err.status_code,
        error_class=err.kind,
        error_message=err.message,
        retry_after_s=err.retry_after,
        **billed,
    )
    outcome = _outcome_for(rt, decision, err.kind, err.message, target.chain)
    if not _finish(rt, claim, outcome, attempt):
        return None
    if isinstance(outcome, Retrying):
        rt.sleep(decision.delay_s)
        return replace(claim, attempt_count=claim.attempt_count + 1)  # this one was recorded
    return None


def _route_around(
    rt: Runtime,
    claim: Claim,
    registry: Registry,
    target: Target,
    watch: Stopwatch,
    error_class: str,
    why: str,
) -> None:
    """No call to this target now: the next usable model of the chain, else wait or fail."""
    unusable = _unusable(rt, registry, target.chain) | {claim.chain_index}
    nxt = first_usable(target.chain, unusable, claim.chain_index + 1)
    outcome: Outcome
    if nxt is not None:
        reason = f"{why}; falling back to {target.chain[nxt].model_id}"
        outcome, decision = Requeued(nxt, target.chain[nxt].provider), "fallback"
    elif error_class == CIRCUIT_OPEN:
        reason = f"{why}; no other model: waiting for its half-open probe"
        outcome, decision = Waiting(datetime.now(UTC) + timedelta(seconds=_probe_wait(rt))), "wait"
    else:
        reason = f"{why}; no model left in the fallback chain"
        outcome, decision = Failed(error_class, reason), "fail"
    attempt = attempt_row(
        target.model,
        watch,
        decision=decision,
        reason=reason,
        error_class=error_class,
        error_message=why,
        skipped=True,
    )
    _finish(rt, claim, outcome, attempt)


def _gone(rt: Runtime, claim: Claim, registry: Registry, chain: list[ChainEntry]) -> None:
    """The job's current model left the registry or was disabled since it was queued."""
    nxt = first_usable(chain, _unusable(rt, registry, chain), claim.chain_index + 1)
    why = f"{claim.model_id} is no longer served by this gateway (removed or disabled)"
    outcome: Outcome
    if nxt is None:
        outcome = Failed(ErrorKind.NOT_FOUND.value, f"{why}; no model left in the fallback chain")
    else:
        outcome = Requeued(nxt, chain[nxt].provider)
    _finish(rt, claim, outcome)


def _usable_now(registry: Registry, model: ModelInfo) -> bool:
    return model.enabled and registry.provider_of(model).enabled


def _probe_wait(rt: Runtime) -> float:
    return 1.0 + 4.0 * rt.jitter()  # cool-downs are tens of seconds: look again soon


def _outcome_for(
    rt: Runtime, decision: Decision, kind: str, message: str, chain: list[ChainEntry]
) -> Outcome:
    if decision.action is Action.RETRY:
        if decision.delay_s <= rt.max_in_slot_wait_s:
            return Retrying(lease_s=rt.lease_s + decision.delay_s)
        return Waiting(datetime.now(UTC) + timedelta(seconds=decision.delay_s))
    if decision.action is Action.FALLBACK:
        assert decision.next_index is not None
        return Requeued(decision.next_index, chain[decision.next_index].provider)
    return Failed(decision.error_class or kind, f"{decision.reason}: {message}")


def _finish(
    rt: Runtime,
    claim: Claim,
    outcome: Outcome,
    attempt: AttemptRecord | None = None,
    also: Callable[[psycopg.Connection[Any]], None] | None = None,
) -> bool:
    """Record ``outcome`` (and run ``also`` in the same transaction, if the claim held); then
    publish or set aside what it implies. False if the claim was lost.

    The end of a step of a chain or ensemble moves its orchestration on in that transaction
    too (``app.orchestration.hook``): the next step exists as soon as this one is recorded."""
    step = continuation(claim, outcome)

    def write(conn: psycopg.Connection[Any]) -> Recorded:
        def move() -> Recorded:
            return record(
                conn,
                claim.id,
                outcome,
                attempt=attempt,
                claim_token=claim.token,
                notify=claim.notify,
            )

        if also is None and step is None:  # the hot path: one statement, committed on its own
            return move()
        with conn.transaction():
            if step is not None:
                step.lock(conn)
            recorded = move()
            if recorded.moved:
                if also is not None:
                    also(conn)
                if step is not None:
                    step.advance(conn)
            return recorded

    recorded = retrying(rt.engine, write, for_s=rt.lease_s)
    if not recorded.moved:
        log.warning("job %s: claim %d lost before recording; result dropped", claim.id, claim.token)
        return False
    if recorded.webhook_events:
        try:
            rt.publish_events(recorded.webhook_events)
        except Exception:
            log.warning("job %s: webhook events not published; the sweep will", claim.id)
    if isinstance(outcome, Requeued):
        rt.dispatcher.publish([JobRef(claim.id, outcome.provider, claim.priority)])
    elif isinstance(outcome, Waiting):
        rt.delayed.add(claim.id, outcome.not_before.timestamp())
    elif rt.relay is not None and awaited(claim.request, claim.batch_id):
        status = "succeeded" if isinstance(outcome, Succeeded) else "failed"
        rt.relay.ended(claim.id, AttemptId(claim.token, claim.attempt_count + 1), status)
    if step is not None:
        step.after_commit(rt)
    rt.observer.recorded(claim, outcome, attempt)
    if rt.cache is not None and isinstance(outcome, Succeeded | Failed):
        rt.cache.job_ended(claim.id, claim.request)  # serve or release the jobs waiting for it
    return True


def _time_left(claim: Claim) -> float | None:
    if claim.deadline_at is None:
        return None
    return (claim.deadline_at - datetime.now(UTC)).total_seconds()


def _entry(registry: Registry, model_id: str) -> ChainEntry:
    model = registry.models.get(model_id)
    if model is None:
        return ChainEntry(model_id, "", 0)
    return ChainEntry(model.id, model.provider, model.context_window)


def _unusable(rt: Runtime, registry: Registry, chain: list[ChainEntry]) -> frozenset[int]:
    """Chain positions not worth trying now: gone from the registry, disabled, breaker open."""
    blocked = set()
    for i, entry in enumerate(chain):
        model = registry.models.get(entry.model_id)
        if model is None or not _usable_now(registry, model) or not _closed(rt, model):
            blocked.add(i)
    return frozenset(blocked)


def _closed(rt: Runtime, model: ModelInfo) -> bool:
    if rt.breakers is None:
        return True
    return rt.breakers.usable((provider_target(model.provider), model_target(model.id)))


_HISTORY = (
    "SELECT model_id, error_class FROM attempts WHERE job_id = %s AND status <> 'skipped' "
    "ORDER BY number"
)


def _history(rt: Runtime, claim: Claim) -> list[PastAttempt]:
    index = {model_id: i for i, model_id in enumerate(claim.models)}
    with autocommit(rt.engine) as conn:
        rows = conn.execute(_HISTORY, (claim.id,)).fetchall()
    return [PastAttempt(index.get(model_id, -1), error_class) for model_id, error_class in rows]
