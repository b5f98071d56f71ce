"""Circuit breakers on a real Redis: opening, probing, back-off, forcing, the local cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import redis

from app.errors import InvalidInput
from app.routing.breakers import (
    BreakerPolicy,
    BreakerState,
    CircuitBreakers,
    Verdict,
    model_target,
    provider_target,
)

POLICY = BreakerPolicy(failure_threshold=3, cooldown_s=0.2, max_cooldown_s=0.5, probe_lease_s=0.3)
COOLDOWN_PASSED = 0.25  # sleep this long for POLICY's first open period to end
PROVIDER = provider_target("openai")
MODEL = model_target("gpt-4o-mini")
OTHER_MODEL = model_target("gpt-4o")


@pytest.fixture
def breakers(redis_db: redis.Redis) -> CircuitBreakers:
    return CircuitBreakers(redis_db, POLICY, cache_s=0)


def fail(breakers: CircuitBreakers, target: str, times: int, reason: str = "server_error") -> None:
    for _ in range(times):
        breakers.record_failure([target], reason)


def open_then_wait(breakers: CircuitBreakers, target: str) -> None:
    """Leave ``target`` half-open with its probe slot free."""
    fail(breakers, target, POLICY.failure_threshold)
    time.sleep(COOLDOWN_PASSED)


def evalsha_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def test_target_names() -> None:
    assert provider_target("anthropic") == "provider:anthropic"
    assert model_target("claude-3-5-haiku") == "model:claude-3-5-haiku"


def test_opens_at_the_threshold_not_before(breakers: CircuitBreakers) -> None:
    fail(breakers, MODEL, POLICY.failure_threshold - 1)
    assert breakers.check([MODEL]).allowed
    assert breakers.status(MODEL).state is BreakerState.CLOSED

    breakers.record_failure([MODEL], "timeout")

    assert breakers.check([MODEL]) == Verdict(False, MODEL, probe=False, dirty=False)
    status = breakers.status(MODEL)
    assert status.state is BreakerState.OPEN
    assert status.consecutive_failures == POLICY.failure_threshold
    assert status.last_failure == "timeout"
    assert not status.forced
    assert status.opened_at is not None
    assert status.open_until == pytest.approx(status.opened_at + POLICY.cooldown_s, abs=1e-3)


def test_refuses_while_open_and_ignores_stragglers(breakers: CircuitBreakers) -> None:
    fail(breakers, MODEL, POLICY.failure_threshold)
    before = breakers.status(MODEL)

    # Calls that began before it opened report late: neither kind moves the open period.
    breakers.record_success([MODEL])
    breakers.record_failure([MODEL], "overloaded")

    after = breakers.status(MODEL)
    assert after.state is BreakerState.OPEN
    assert after.open_until == before.open_until
    assert after.consecutive_failures == POLICY.failure_threshold + 1
    assert after.last_failure == "overloaded"
    for _ in range(5):
        assert breakers.check([MODEL]).blocked_by == MODEL


def test_a_success_resets_the_count(breakers: CircuitBreakers) -> None:
    fail(breakers, MODEL, POLICY.failure_threshold - 1)
    breakers.record_success([MODEL])
    fail(breakers, MODEL, POLICY.failure_threshold - 1)
    assert breakers.check([MODEL]).allowed

    breakers.record_failure([MODEL], "timeout")
    assert not breakers.check([MODEL]).allowed


def test_dirty_tells_the_caller_a_success_must_be_reported(breakers: CircuitBreakers) -> None:
    assert breakers.check([PROVIDER, MODEL]) == Verdict(True, None, probe=False, dirty=False)

    breakers.record_failure([MODEL], "server_error")
    assert breakers.check([PROVIDER, MODEL]) == Verdict(True, None, probe=False, dirty=True)

    breakers.record_success([PROVIDER, MODEL])
    assert breakers.check([PROVIDER, MODEL]) == Verdict(True, None, probe=False, dirty=False)
    assert breakers.all() == []  # a clean closed breaker is the default: nothing stored


def test_half_open_gives_one_probe_to_many_threads(breakers: CircuitBreakers) -> None:
    open_then_wait(breakers, MODEL)
    callers = 32
    start = threading.Barrier(callers)
    verdicts: list[Verdict] = []

    def call() -> None:
        start.wait()
        verdicts.append(breakers.check([PROVIDER, MODEL]))

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    probes = [v for v in verdicts if v.allowed]
    assert probes == [Verdict(True, None, probe=True, dirty=True)]
    assert all(v.blocked_by == MODEL for v in verdicts if not v.allowed)
    assert breakers.status(MODEL).state is BreakerState.HALF_OPEN


def test_half_open_gives_one_probe_across_processes(
    redis_connect: Callable[[], redis.Redis],
) -> None:
    # Two instances on their own connections stand for two worker processes.
    processes = [CircuitBreakers(redis_connect(), POLICY) for _ in range(2)]
    open_then_wait(processes[0], MODEL)
    rounds = 10
    start = threading.Barrier(len(processes) * rounds)
    allowed: list[bool] = []

    def call(breakers: CircuitBreakers) -> None:
        start.wait()
        allowed.append(breakers.check([MODEL]).allowed)

    threads = [threading.Thread(target=call, args=(b,)) for b in processes for _ in range(rounds)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(allowed) == [False] * (len(threads) - 1) + [True]


def test_probe_success_closes(breakers: CircuitBreakers) -> None:
    open_then_wait(breakers, MODEL)
    assert breakers.check([MODEL]).probe

    breakers.record_success([MODEL])

    status = breakers.status(MODEL)
    assert status.state is BreakerState.CLOSED
    assert status.consecutive_failures == 0
    assert breakers.check([MODEL]) == Verdict(True, None, probe=False, dirty=False)
    # The cool-down is back to its first step: the next opening lasts cooldown_s again.
    fail(breakers, MODEL, POLICY.failure_threshold)
    reopened = breakers.status(MODEL)
    assert reopened.opened_at is not None
    assert reopened.open_until == pytest.approx(reopened.opened_at + POLICY.cooldown_s, abs=1e-3)


def test_probe_failure_reopens_with_doubled_cooldown_up_to_the_cap(
    breakers: CircuitBreakers,
) -> None:
    open_then_wait(breakers, MODEL)
    assert breakers.check([MODEL]).probe
    breakers.record_failure([MODEL], "timeout")

    status = breakers.status(MODEL)
    assert status.state is BreakerState.OPEN
    assert status.opened_at is not None
    assert status.open_until == pytest.approx(status.opened_at + 2 * POLICY.cooldown_s, abs=1e-3)
    time.sleep(COOLDOWN_PASSED)
    assert not breakers.check([MODEL]).allowed  # still inside the doubled period

    time.sleep(2 * POLICY.cooldown_s - COOLDOWN_PASSED + 0.05)
    assert breakers.check([MODEL]).probe
    breakers.record_failure([MODEL], "timeout")
    capped = breakers.status(MODEL)
    assert capped.opened_at is not None
    assert capped.open_until == pytest.approx(capped.opened_at + POLICY.max_cooldown_s, abs=1e-3)


def test_an_unreported_probe_frees_its_slot_after_the_lease(breakers: CircuitBreakers) -> None:
    open_then_wait(breakers, MODEL)
    assert breakers.check([MODEL]).probe  # ... and this worker dies without reporting

    time.sleep(POLICY.probe_lease_s - 0.1)
    assert not breakers.check([MODEL]).allowed
    time.sleep(0.15)
    assert breakers.check([MODEL]).probe


def test_usable_does_not_take_the_probe_slot(breakers: CircuitBreakers) -> None:
    assert breakers.usable([PROVIDER, MODEL])
    fail(breakers, MODEL, POLICY.failure_threshold)
    assert not breakers.usable([PROVIDER, MODEL])

    time.sleep(COOLDOWN_PASSED)
    assert breakers.usable([MODEL])
    assert breakers.usable([MODEL])
    assert breakers.check([MODEL]).probe  # the slot was still free
    assert not breakers.usable([MODEL])  # now the probe is out


def test_check_across_targets_names_the_one_that_blocked(breakers: CircuitBreakers) -> None:
    fail(breakers, MODEL, POLICY.failure_threshold)
    assert breakers.check([PROVIDER, MODEL]).blocked_by == MODEL
    assert breakers.check([PROVIDER, OTHER_MODEL]).allowed

    fail(breakers, PROVIDER, POLICY.failure_threshold)
    assert breakers.check([PROVIDER, OTHER_MODEL]).blocked_by == PROVIDER
    assert breakers.check([PROVIDER, MODEL]).blocked_by == PROVIDER  # the first that refuses


def test_a_refusal_takes_no_probe_slot_from_the_other_targets(breakers: CircuitBreakers) -> None:
    open_then_wait(breakers, PROVIDER)  # half-open
    breakers.force_open(MODEL, 10, "not_found")

    assert breakers.check([PROVIDER, MODEL]).blocked_by == MODEL
    # The provider's probe slot is still free for a job on another model.
    assert breakers.check([PROVIDER, OTHER_MODEL]) == Verdict(True, None, probe=True, dirty=True)


def test_force_open_and_its_expiry(breakers: CircuitBreakers) -> None:
    breakers.force_open(MODEL, 0.2, "not_found")

    status = breakers.status(MODEL)
    assert (status.state, status.forced, status.last_failure) == (
        BreakerState.OPEN,
        True,
        "not_found",
    )
    assert status.consecutive_failures == 0
    assert breakers.check([MODEL]).blocked_by == MODEL
    breakers.record_success([MODEL])  # a straggler's success does not undo it
    assert not breakers.check([MODEL]).allowed

    time.sleep(COOLDOWN_PASSED)
    assert breakers.status(MODEL).state is BreakerState.HALF_OPEN
    assert breakers.check([MODEL]).probe
    breakers.record_success([MODEL])
    assert breakers.status(MODEL).state is BreakerState.CLOSED


def test_force_open_never_shortens_an_open_period(breakers: CircuitBreakers) -> None:
    breakers.force_open(MODEL, 60, "operator")
    first = breakers.status(MODEL)
    breakers.force_open(MODEL, 0.1, "not_found")

    second = breakers.status(MODEL)
    assert (second.opened_at, second.open_until) == (first.opened_at, first.open_until)
    assert second.last_failure == "not_found"
    with pytest.raises(InvalidInput):
        breakers.force_open(MODEL, 0, "oops")


def test_reset_closes_at_once(breakers: CircuitBreakers) -> None:
    breakers.force_open(MODEL, 60, "operator")
    breakers.reset(MODEL)
    assert breakers.check([MODEL]) == Verdict(True, None, probe=False, dirty=False)
    assert breakers.all() == []


def test_all_lists_every_breaker_with_state(breakers: CircuitBreakers) -> None:
    breakers.record_failure([PROVIDER], "timeout")
    fail(breakers, MODEL, POLICY.failure_threshold)
    breakers.force_open(OTHER_MODEL, 60, "not_found")
    breakers.record_failure([model_target("healed")], "timeout")
    breakers.record_success([model_target("healed")])

    listed = {s.target: (s.state, s.consecutive_failures, s.forced) for s in breakers.all()}

    assert listed == {
        MODEL: (BreakerState.OPEN, POLICY.failure_threshold, False),
        OTHER_MODEL: (BreakerState.OPEN, 0, True),
        PROVIDER: (BreakerState.CLOSED, 1, False),
    }
    assert [s.target for s in breakers.all()] == sorted(listed)
    time.sleep(COOLDOWN_PASSED)
    assert breakers.status(MODEL).state is BreakerState.HALF_OPEN


def test_the_cache_answers_clean_targets_without_redis(redis_db: redis.Redis) -> None:
    breakers = CircuitBreakers(redis_db, POLICY, cache_s=10)
    assert breakers.check([PROVIDER, MODEL]).allowed  # one round trip fills the cache
    calls = evalsha_calls(redis_db)

    for _ in range(100):
        assert breakers.check([PROVIDER, MODEL]) == Verdict(True, None, probe=False, dirty=False)
    assert breakers.usable([MODEL, PROVIDER])

    assert evalsha_calls(redis_db) == calls


def test_a_failure_here_invalidates_the_cache_at_once(redis_db: redis.Redis) -> None:
    breakers = CircuitBreakers(redis_db, POLICY, cache_s=10)
    assert breakers.check([PROVIDER, MODEL]).allowed

    breakers.record_failure([MODEL], "server_error")
    assert breakers.check([PROVIDER, MODEL]).dirty  # asked Redis again
    fail(breakers, MODEL, POLICY.failure_threshold - 1)
    assert breakers.check([PROVIDER, MODEL]).blocked_by == MODEL
    # Dirty and refused answers were not cached: every call still asks Redis.
    calls = evalsha_calls(redis_db)
    breakers.check([PROVIDER, MODEL])
    assert evalsha_calls(redis_db) == calls + 1


def test_another_process_sees_an_opening_within_cache_s(
    redis_connect: Callable[[], redis.Redis],
) -> None:
    long_open = BreakerPolicy(failure_threshold=1, cooldown_s=60)
    here = CircuitBreakers(redis_connect(), long_open, cache_s=0.2)
    elsewhere = CircuitBreakers(redis_connect(), long_open, cache_s=0.2)
    assert here.check([MODEL]).allowed

    elsewhere.record_failure([MODEL], "server_error")

    assert here.check([MODEL]).allowed  # the documented staleness: still cached as clean
    time.sleep(0.2)
    assert here.check([MODEL]).blocked_by == MODEL


def test_empty_targets_are_allowed_without_a_round_trip(redis_db: redis.Redis) -> None:
    breakers = CircuitBreakers(redis_db, POLICY, cache_s=0)
    calls = evalsha_calls(redis_db)
    assert breakers.check([]) == Verdict(True, None, probe=False, dirty=False)
    breakers.record_success([])
    breakers.record_failure([], "timeout")
    assert evalsha_calls(redis_db) == calls


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        BreakerPolicy(failure_threshold=0)
    with pytest.raises(ValueError, match="cooldown"):
        BreakerPolicy(cooldown_s=10, max_cooldown_s=5)
    with pytest.raises(ValueError, match="probe_lease_s"):
        BreakerPolicy(probe_lease_s=0)
