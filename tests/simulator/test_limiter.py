"""The token buckets' exact arithmetic, on a clock the test controls."""

from __future__ import annotations

import math

import pytest

from app.simulator.config import SimProvider
from app.simulator.faults import Fault, SimError
from app.simulator.limiter import ProviderLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **limits: object) -> ProviderLimiter:
    spec = SimProvider.model_validate({"format": "openai", **limits})
    built = ProviderLimiter.for_provider(spec, clock)
    assert built is not None
    return built


def refusal(call: object) -> SimError:
    assert callable(call)
    with pytest.raises(SimError) as caught:
        call()
    assert caught.value.fault is Fault.RATE_LIMIT
    assert caught.value.rate_limit is not None
    return caught.value


def test_bucket_capacity_and_refill() -> None:
    bucket = TokenBucket(600, burst_s=6.0, now=0.0)
    assert (bucket.capacity, bucket.rate, bucket.level) == (60.0, 10.0, 60.0)
    bucket.take(60)
    bucket.refill(2.5)
    assert bucket.level == pytest.approx(25.0)
    assert bucket.wait_for(30) == pytest.approx(0.5)
    assert bucket.wait_for(61) == math.inf
    bucket.refill(100.0)
    assert bucket.level == 60.0  # never above capacity
    view = bucket.view()
    assert (view.limit, view.remaining, view.reset_s) == (600, 60, 0.0)


def test_no_limits_no_limiter() -> None:
    assert ProviderLimiter.for_provider(SimProvider(format="openai")) is None


def test_rpm_with_one_second_of_burst() -> None:
    clock = Clock()
    rpm = limiter(clock, rpm=60, burst_s=1)
    rpm.admit("k", 10, 10)
    error = refusal(lambda: rpm.admit("k", 10, 10))
    facts = error.rate_limit
    assert facts is not None
    assert (facts.kind, facts.limit, facts.requested) == ("requests", 60, 1)
    assert facts.retry_after_s == pytest.approx(1.0)
    clock.now += 0.999
    refusal(lambda: rpm.admit("k", 10, 10))
    clock.now += 0.001
    rpm.admit("k", 10, 10)


def test_admission_is_all_or_nothing() -> None:
    clock = Clock()
    both = limiter(clock, rpm=60, tpm=600)  # 60 requests, 600 tokens
    both.admit("k", 100, 400)  # 500 tokens
    error = refusal(lambda: both.admit("k", 100, 100))  # needs 200, 100 left
    assert error.rate_limit is not None
    assert error.rate_limit.kind == "tokens"
    assert error.rate_limit.retry_after_s == pytest.approx(100 / 10)  # 10 tokens/s
    views = both.views("k")
    assert views["requests"].remaining == 59  # the refused request took no request token
    assert views["tokens"].remaining == 100


def test_retry_after_is_when_every_bucket_admits() -> None:
    clock = Clock()
    both = limiter(clock, rpm=6, tpm=600, burst_s=10)  # 1 request (0.1/s), 100 tokens (10/s)
    both.admit("k", 50, 50)
    error = refusal(lambda: both.admit("k", 50, 50))
    assert error.rate_limit is not None
    assert error.rate_limit.retry_after_s == pytest.approx(10.0)  # the request bucket's 10 s
    assert error.rate_limit.kind == "requests"


def test_unused_output_is_refunded_up_to_capacity() -> None:
    clock = Clock()
    tokens = limiter(clock, tpm=1000)
    admission = tokens.admit("k", 100, 500)
    assert tokens.views("k")["tokens"].remaining == 400
    admission.settle(20)
    assert tokens.views("k")["tokens"].remaining == 880
    admission.settle(0)  # settling twice gives nothing more
    assert tokens.views("k")["tokens"].remaining == 880
    clock.now += 60
    tokens.admit("k", 0, 10).settle(0)
    assert tokens.views("k")["tokens"].remaining == 1000


def test_input_and_output_token_limits_are_metered_separately() -> None:
    clock = Clock()
    split = limiter(clock, itpm=1000, otpm=100)
    split.admit("k", 900, 50)
    error = refusal(lambda: split.admit("k", 50, 60))
    assert error.rate_limit is not None
    assert error.rate_limit.kind == "output_tokens"
    admission = split.admit("k", 100, 50)
    admission.settle(10)
    views = split.views("k")
    assert (views["input_tokens"].remaining, views["output_tokens"].remaining) == (0, 40)


def test_release_gives_everything_back() -> None:
    clock = Clock()
    both = limiter(clock, rpm=60, tpm=1000)
    both.admit("k", 100, 100).release()
    views = both.views("k")
    assert (views["requests"].remaining, views["tokens"].remaining) == (60, 1000)


def test_a_request_larger_than_the_bucket_is_refused() -> None:
    clock = Clock()
    tokens = limiter(clock, tpm=1000, burst_s=30)  # capacity 500
    error = refusal(lambda: tokens.admit("k", 400, 200))
    assert error.rate_limit is not None
    assert error.rate_limit.too_large
    assert error.rate_limit.retry_after_s >= 1


def test_scopes() -> None:
    clock = Clock()
    per_key = limiter(clock, rpm=60, burst_s=1)
    per_key.admit("a", 1, 1)
    per_key.admit("b", 1, 1)
    refusal(lambda: per_key.admit("a", 1, 1))
    shared = limiter(clock, rpm=60, burst_s=1, limit_scope="provider")
    shared.admit("a", 1, 1)
    refusal(lambda: shared.admit("b", 1, 1))
