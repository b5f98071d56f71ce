"""The retry / fallback / fail table, row by row, plus properties over all inputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.providers.errors import ErrorKind
from app.routing.decision import (
    Action,
    ChainEntry,
    Failure,
    PastAttempt,
    RetryPolicy,
    decide,
)

CHAIN = [
    ChainEntry("small", "openai", 8_000),
    ChainEntry("medium", "openai", 32_000),
    ChainEntry("claude", "anthropic", 200_000),
]
POLICY = RetryPolicy(max_retries=2, base_backoff_s=1.0, max_backoff_s=8.0)


def failed_on(index: int, kind: ErrorKind, times: int = 1) -> list[PastAttempt]:
    return [PastAttempt(index, kind.value)] * times


def test_invalid_request_fails_at_once() -> None:
    d = decide(
        Failure(ErrorKind.INVALID_REQUEST),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.INVALID_REQUEST),
        policy=POLICY,
    )
    assert d.action is Action.FAIL
    assert "rejected the request" in d.reason


def test_rate_limit_waits_for_retry_after() -> None:
    d = decide(
        Failure(ErrorKind.RATE_LIMIT, retry_after_s=4),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.RATE_LIMIT),
        policy=POLICY,
    )
    assert (d.action, d.delay_s) == (Action.RETRY, 4)


def test_rate_limit_past_the_deadline_falls_back() -> None:
    d = decide(
        Failure(ErrorKind.RATE_LIMIT, retry_after_s=30),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.RATE_LIMIT),
        time_left_s=10,
        policy=POLICY,
    )
    assert (d.action, d.next_index) == (Action.FALLBACK, 1)


def test_rate_limit_longer_than_the_policy_allows_falls_back() -> None:
    d = decide(
        Failure(ErrorKind.RATE_LIMIT, retry_after_s=600),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.RATE_LIMIT),
        policy=POLICY,
    )
    assert d.action is Action.FALLBACK


def test_rate_limit_repeated_too_often_falls_back() -> None:
    d = decide(
        Failure(ErrorKind.RATE_LIMIT, retry_after_s=1),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.RATE_LIMIT, POLICY.max_rate_limit_waits + 1),
        policy=POLICY,
    )
    assert d.action is Action.FALLBACK


@pytest.mark.parametrize("kind", [ErrorKind.OVERLOADED, ErrorKind.SERVER_ERROR, ErrorKind.TIMEOUT])
def test_transient_errors_retry_with_growing_backoff_then_fall_back(kind: ErrorKind) -> None:
    first = decide(
        Failure(kind),
        chain=CHAIN,
        index=0,
        history=failed_on(0, kind, 1),
        jitter=0.0,
        policy=POLICY,
    )
    second = decide(
        Failure(kind),
        chain=CHAIN,
        index=0,
        history=failed_on(0, kind, 2),
        jitter=0.0,
        policy=POLICY,
    )
    third = decide(
        Failure(kind),
        chain=CHAIN,
        index=0,
        history=failed_on(0, kind, 3),
        jitter=0.0,
        policy=POLICY,
    )
    assert first.action is Action.RETRY
    assert second.action is Action.RETRY
    assert second.delay_s > first.delay_s
    assert (third.action, third.next_index) == (Action.FALLBACK, 1)


def test_backoff_honours_a_longer_retry_after() -> None:
    d = decide(
        Failure(ErrorKind.OVERLOADED, retry_after_s=5),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.OVERLOADED),
        policy=POLICY,
    )
    assert (d.action, d.delay_s) == (Action.RETRY, 5)


def test_a_success_in_between_resets_the_retry_count() -> None:
    history = [
        *failed_on(0, ErrorKind.SERVER_ERROR, 2),
        PastAttempt(0, None),
        PastAttempt(0, ErrorKind.SERVER_ERROR.value),
    ]
    d = decide(
        Failure(ErrorKind.SERVER_ERROR), chain=CHAIN, index=0, history=history, policy=POLICY
    )
    assert d.action is Action.RETRY


def test_context_length_skips_to_a_larger_window() -> None:
    chain = [
        ChainEntry("a", "p", 8_000),
        ChainEntry("b", "p", 4_000),
        ChainEntry("c", "q", 8_000),
        ChainEntry("d", "q", 128_000),
    ]
    d = decide(
        Failure(ErrorKind.CONTEXT_LENGTH),
        chain=chain,
        index=0,
        history=failed_on(0, ErrorKind.CONTEXT_LENGTH),
        policy=POLICY,
    )
    assert (d.action, d.next_index) == (Action.FALLBACK, 3)


def test_context_length_with_no_larger_model_fails() -> None:
    d = decide(
        Failure(ErrorKind.CONTEXT_LENGTH),
        chain=CHAIN,
        index=2,
        history=failed_on(2, ErrorKind.CONTEXT_LENGTH),
        policy=POLICY,
    )
    assert d.action is Action.FAIL
    assert "no model left" in d.reason


def test_auth_with_another_key_retries_at_once_and_disables_the_key() -> None:
    d = decide(
        Failure(ErrorKind.AUTH),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.AUTH),
        other_key_available=True,
        policy=POLICY,
    )
    assert (d.action, d.delay_s, d.disable_key) == (Action.RETRY, 0.0, True)


def test_auth_without_another_key_falls_back_and_disables_the_key() -> None:
    d = decide(
        Failure(ErrorKind.AUTH),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.AUTH),
        policy=POLICY,
    )
    assert (d.action, d.next_index, d.disable_key) == (Action.FALLBACK, 1, True)


def test_content_filter_prefers_another_provider() -> None:
    d = decide(
        Failure(ErrorKind.CONTENT_FILTER),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.CONTENT_FILTER),
        policy=POLICY,
    )
    assert (d.action, d.next_index) == (Action.FALLBACK, 2)


def test_content_filter_takes_the_same_provider_when_nothing_else_is_left() -> None:
    chain = CHAIN[:2]
    d = decide(
        Failure(ErrorKind.CONTENT_FILTER),
        chain=chain,
        index=0,
        history=failed_on(0, ErrorKind.CONTENT_FILTER),
        policy=POLICY,
    )
    assert (d.action, d.next_index) == (Action.FALLBACK, 1)


def test_not_found_marks_the_model_unavailable_and_falls_back() -> None:
    d = decide(
        Failure(ErrorKind.NOT_FOUND),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.NOT_FOUND),
        policy=POLICY,
    )
    assert (d.action, d.next_index, d.mark_model_unavailable) == (Action.FALLBACK, 1, True)


def test_unknown_errors_retry_once_then_fall_back() -> None:
    once = decide(
        Failure(ErrorKind.UNKNOWN),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.UNKNOWN, 1),
        policy=POLICY,
    )
    twice = decide(
        Failure(ErrorKind.UNKNOWN),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.UNKNOWN, 2),
        policy=POLICY,
    )
    assert once.action is Action.RETRY
    assert twice.action is Action.FALLBACK


def test_fallback_skips_unusable_models() -> None:
    d = decide(
        Failure(ErrorKind.NOT_FOUND),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.NOT_FOUND),
        unusable=frozenset({1}),
        policy=POLICY,
    )
    assert d.next_index == 2


def test_a_retry_that_would_end_past_the_deadline_falls_back_instead() -> None:
    d = decide(
        Failure(ErrorKind.SERVER_ERROR),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.SERVER_ERROR),
        time_left_s=0.1,
        jitter=0.0,
        policy=POLICY,
    )
    assert d.action is Action.FALLBACK


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_past_the_deadline_every_failure_fails_with_reason_deadline(kind: ErrorKind) -> None:
    d = decide(
        Failure(kind, retry_after_s=0),
        chain=CHAIN,
        index=0,
        history=failed_on(0, kind),
        time_left_s=0.0,
        other_key_available=True,
        policy=POLICY,
    )
    assert (d.action, d.error_class) == (Action.FAIL, "deadline")


def test_the_last_model_failing_fails_the_job() -> None:
    d = decide(
        Failure(ErrorKind.SERVER_ERROR),
        chain=CHAIN,
        index=2,
        history=failed_on(2, ErrorKind.SERVER_ERROR, 3),
        policy=POLICY,
    )
    assert d.action is Action.FAIL


@given(
    kind=st.sampled_from(list(ErrorKind)),
    index=st.integers(0, len(CHAIN) - 1),
    repeats=st.integers(1, 8),
    retry_after=st.one_of(st.none(), st.floats(0, 1000)),
    time_left=st.one_of(st.none(), st.floats(-10, 10_000)),
    unusable=st.frozensets(st.integers(0, len(CHAIN) - 1)),
    jitter=st.floats(0, 0.999),
    other_key=st.booleans(),
    deterministic=st.booleans(),
)
def test_every_decision_is_well_formed(
    kind: ErrorKind,
    index: int,
    repeats: int,
    retry_after: float | None,
    time_left: float | None,
    unusable: frozenset[int],
    jitter: float,
    other_key: bool,
    deterministic: bool,
) -> None:
    d = decide(
        Failure(kind, retry_after, deterministic),
        chain=CHAIN,
        index=index,
        history=failed_on(index, kind, repeats),
        time_left_s=time_left,
        unusable=unusable,
        other_key_available=other_key,
        jitter=jitter,
        policy=POLICY,
    )
    assert d.reason
    if d.action is Action.FALLBACK:
        assert d.next_index is not None
        assert d.next_index > index
        assert d.next_index not in unusable
    else:
        assert d.next_index is None
    if d.action is Action.RETRY:
        assert d.delay_s >= 0
        assert time_left is None or d.delay_s < time_left
        assert kind is not ErrorKind.INVALID_REQUEST
        assert not (kind is ErrorKind.QUALITY and deterministic)  # it would say the same


def test_a_quality_failure_resamples_the_same_model_once_at_once() -> None:
    d = decide(
        Failure(ErrorKind.QUALITY),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.QUALITY),
        policy=POLICY,
    )
    assert (d.action, d.delay_s, d.next_index) == (Action.RETRY, 0.0, None)
    assert "failed validation" in d.reason


def test_a_second_quality_failure_in_a_row_falls_back() -> None:
    d = decide(
        Failure(ErrorKind.QUALITY),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.QUALITY, 2),
        policy=POLICY,
    )
    assert (d.action, d.next_index) == (Action.FALLBACK, 1)


def test_a_greedy_request_failing_validation_falls_back_without_resampling() -> None:
    d = decide(
        Failure(ErrorKind.QUALITY, deterministic=True),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.QUALITY),
        policy=POLICY,
    )
    assert (d.action, d.next_index) == (Action.FALLBACK, 1)
    assert "greedy" in d.reason


def test_quality_failures_on_the_last_model_fail_the_job_with_class_quality() -> None:
    d = decide(
        Failure(ErrorKind.QUALITY),
        chain=CHAIN,
        index=2,
        history=failed_on(2, ErrorKind.QUALITY, 2),
        policy=POLICY,
    )
    assert (d.action, d.error_class) == (Action.FAIL, None)  # the job's class: the failure's
    assert "no model left" in d.reason


def test_quality_resamples_are_counted_by_the_policy() -> None:
    policy = RetryPolicy(max_quality_retries=3)
    decisions = [
        decide(
            Failure(ErrorKind.QUALITY),
            chain=CHAIN,
            index=1,
            history=failed_on(1, ErrorKind.QUALITY, n),
            policy=policy,
        ).action
        for n in range(1, 5)
    ]
    assert decisions == [Action.RETRY, Action.RETRY, Action.RETRY, Action.FALLBACK]


def test_quality_falls_back_past_unusable_models() -> None:
    d = decide(
        Failure(ErrorKind.QUALITY),
        chain=CHAIN,
        index=0,
        history=failed_on(0, ErrorKind.QUALITY, 2),
        unusable=frozenset({1}),
        policy=POLICY,
    )
    assert d.next_index == 2
