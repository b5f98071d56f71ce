"""What to do after a failed attempt: one table, a pure function of its inputs.

=================  ===========================================================================
error class        decision
=================  ===========================================================================
rate_limit         wait ``retry_after`` on the same model if it fits the deadline and the
                   policy's longest wait; otherwise fall back
overloaded,        retry the same model with exponential backoff and jitter, at most
server_error,      ``max_retries`` times in a row; then fall back
timeout
context_length     fall back to the next model whose context window is larger
auth               disable the key; retry at once with another key of the provider if there
                   is one, else fall back
content_filter     fall back, preferring a model of another provider
not_found          mark the model unavailable; fall back
quality            the answer failed the request's validators: retry the same model at once,
                   at most ``max_quality_retries`` times in a row (a new sample may pass) —
                   none when the request is greedy (temperature 0: it would say the same
                   again); then fall back
invalid_request    fail at once: the request itself is wrong
unknown            retry once with backoff, then fall back
=================  ===========================================================================

"Fall back" takes the next usable model of the chain (skipping the ones marked unusable, e.g.
behind an open circuit breaker); with none left the job fails with the last error class. A
delay that would end past the job's deadline is never chosen: the table falls back instead;
once the deadline has passed, the job fails with error class ``deadline``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from app.providers.errors import ErrorKind

TRANSIENT = frozenset({ErrorKind.OVERLOADED, ErrorKind.SERVER_ERROR, ErrorKind.TIMEOUT})


class Action(StrEnum):
    RETRY = "retry"  # the same model again, after ``delay_s``
    FALLBACK = "fallback"  # the chain's model at ``next_index``
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 2
    max_unknown_retries: int = 1
    max_quality_retries: int = 1
    base_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_rate_limit_wait_s: float = 120.0
    max_rate_limit_waits: int = 5

    def backoff_s(self, retry_number: int, jitter: float) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random (``jitter`` ∈ [0,1))."""
        ceiling = min(self.max_backoff_s, self.base_backoff_s * 2.0 ** max(retry_number - 1, 0))
        return ceiling / 2 + ceiling / 2 * jitter


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """What the table needs to know of each model in a job's fallback chain."""

    model_id: str
    provider: str
    context_window: int


@dataclass(frozen=True, slots=True)
class PastAttempt:
    chain_index: int
    error_class: str | None  # None: that attempt succeeded


@dataclass(frozen=True, slots=True)
class Failure:
    kind: ErrorKind
    retry_after_s: float | None = None
    deterministic: bool = False  # greedy decoding: the same model would answer the same


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    delay_s: float = 0.0
    next_index: int | None = None
    disable_key: bool = False
    mark_model_unavailable: bool = False
    error_class: str | None = None  # when failing: the job's error class, if not the failure's


DEADLINE = "deadline"


def decide(
    failure: Failure,
    *,
    chain: Sequence[ChainEntry],
    index: int,
    history: Sequence[PastAttempt],
    time_left_s: float | None = None,
    unusable: frozenset[int] = frozenset(),
    other_key_available: bool = False,
    jitter: float = 0.5,
    policy: RetryPolicy = RetryPolicy(),
) -> Decision:
    """Decide after ``failure`` on ``chain[index]``; ``history`` includes that failed attempt."""
    kind = failure.kind
    current = chain[index]

    def fits(delay_s: float) -> bool:
        return time_left_s is None or delay_s < time_left_s

    if time_left_s is not None and time_left_s <= 0:
        return Decision(Action.FAIL, "the job's deadline passed", error_class=DEADLINE)

    if kind is ErrorKind.INVALID_REQUEST:
        return Decision(Action.FAIL, "the provider rejected the request itself; not retried")

    if kind is ErrorKind.RATE_LIMIT:
        wait = failure.retry_after_s if failure.retry_after_s is not None else policy.base_backoff_s
        waits = _failures_in_a_row(history, index)
        if waits > policy.max_rate_limit_waits:
            return _fall_back(chain, index, unusable, kind, f"rate limited {waits} times in a row")
        if wait <= policy.max_rate_limit_wait_s and fits(wait):
            return Decision(Action.RETRY, f"rate limited: waiting {wait:g}s (retry-after)", wait)
        return _fall_back(
            chain,
            index,
            unusable,
            kind,
            f"rate limited for {wait:g}s, longer than the job can wait",
        )

    if kind in TRANSIENT or kind is ErrorKind.UNKNOWN:
        limit = policy.max_retries if kind in TRANSIENT else policy.max_unknown_retries
        in_a_row = _failures_in_a_row(history, index)
        if in_a_row <= limit:
            delay = max(policy.backoff_s(in_a_row, jitter), failure.retry_after_s or 0.0)
            if fits(delay):
                return Decision(
                    Action.RETRY,
                    f"{kind.value}: retry {in_a_row} of {limit} in {delay:.2f}s",
                    delay,
                )
        return _fall_back(chain, index, unusable, kind, f"{kind.value} {in_a_row} times in a row")

    if kind is ErrorKind.QUALITY:
        limit = 0 if failure.deterministic else policy.max_quality_retries
        in_a_row = _failures_in_a_row(history, index)
        if in_a_row <= limit:
            return Decision(
                Action.RETRY, f"answer failed validation: resampling ({in_a_row} of {limit})"
            )
        why = "answer failed validation" + (
            " (greedy decoding: a retry would repeat it)"
            if failure.deterministic
            else f" {in_a_row} times in a row"
        )
        return _fall_back(chain, index, unusable, kind, why)

    if kind is ErrorKind.CONTEXT_LENGTH:
        larger = frozenset(
            i for i, entry in enumerate(chain) if entry.context_window <= current.context_window
        )
        return _fall_back(
            chain,
            index,
            unusable | larger,
            kind,
            f"prompt does not fit {current.model_id}'s {current.context_window}-token window",
        )

    if kind is ErrorKind.AUTH:
        if other_key_available:
            return Decision(
                Action.RETRY,
                "key rejected: disabled it, retrying with another key",
                disable_key=True,
            )
        decision = _fall_back(
            chain, index, unusable, kind, f"no working key for {current.provider}"
        )
        return replace(decision, disable_key=True)

    if kind is ErrorKind.CONTENT_FILTER:
        same_provider = frozenset(
            i for i, entry in enumerate(chain) if entry.provider == current.provider
        )
        preferred = _next_index(chain, index, unusable | same_provider)
        if preferred is not None:
            return Decision(
                Action.FALLBACK,
                f"content filtered by {current.provider}: trying {chain[preferred].model_id}",
                next_index=preferred,
            )
        return _fall_back(chain, index, unusable, kind, f"content filtered by {current.provider}")

    if kind is ErrorKind.NOT_FOUND:
        decision = _fall_back(
            chain, index, unusable, kind, f"{current.model_id} is unknown to {current.provider}"
        )
        return replace(decision, mark_model_unavailable=True)

    raise AssertionError(f"unhandled error class {kind!r}")  # pragma: no cover


def first_usable(
    chain: Sequence[ChainEntry], unusable: frozenset[int], start: int = 0
) -> int | None:
    """The first chain index at or after ``start`` that is not marked unusable."""
    for i in range(start, len(chain)):
        if i not in unusable:
            return i
    return None


def _next_index(chain: Sequence[ChainEntry], index: int, unusable: frozenset[int]) -> int | None:
    return first_usable(chain, unusable | {index}, index + 1)


def _fall_back(
    chain: Sequence[ChainEntry], index: int, unusable: frozenset[int], kind: ErrorKind, why: str
) -> Decision:
    nxt = _next_index(chain, index, unusable)
    if nxt is None:
        return Decision(Action.FAIL, f"{why}; no model left in the fallback chain")
    return Decision(
        Action.FALLBACK, f"{why}; falling back to {chain[nxt].model_id}", next_index=nxt
    )


def _failures_in_a_row(history: Sequence[PastAttempt], index: int) -> int:
    """How many of the latest attempts, counting back, failed on this same chain position."""
    count = 0
    for attempt in reversed(history):
        if attempt.chain_index != index or attempt.error_class is None:
            break
        count += 1
    return count
