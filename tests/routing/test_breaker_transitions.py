"""What a breaker tells ``on_transition``: each change of state once, across processes."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from app.routing.breakers import BreakerPolicy, BreakerState, CircuitBreakers, model_target

POLICY = BreakerPolicy(failure_threshold=2, cooldown_s=0.2, max_cooldown_s=0.5, probe_lease_s=0.3)
COOLDOWN_PASSED = 0.25
MODEL = model_target("gpt-4o-mini")
CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

Moves = list[tuple[str, BreakerState, BreakerState]]


@pytest.fixture
def moves() -> Moves:
    return []


@pytest.fixture
def breakers(redis_db: redis.Redis, moves: Moves) -> CircuitBreakers:
    return CircuitBreakers(
        redis_db, POLICY, cache_s=0, on_transition=lambda *move: moves.append(move)
    )


def test_a_whole_cycle_closed_open_half_open_open_half_open_closed(
    breakers: CircuitBreakers, moves: Moves
) -> None:
    breakers.record_failure([MODEL], "server_error")
    assert moves == []  # counting, still closed
    breakers.record_failure([MODEL], "server_error")
    assert moves == [(MODEL, CLOSED, OPEN)]

    breakers.record_failure([MODEL], "late")  # a call that began before it opened
    assert not breakers.check([MODEL]).allowed
    assert len(moves) == 1

    time.sleep(COOLDOWN_PASSED)
    assert breakers.usable([MODEL])  # a look takes no probe and moves nothing
    assert len(moves) == 1
    assert breakers.check([MODEL]).probe
    assert moves[-1] == (MODEL, OPEN, HALF_OPEN)
    breakers.record_failure([MODEL], "still down")
    assert moves[-1] == (MODEL, HALF_OPEN, OPEN)

    time.sleep(2 * POLICY.cooldown_s + 0.05)  # the cool-down doubled
    assert breakers.check([MODEL]).probe
    breakers.record_success([MODEL])
    assert moves[3:] == [(MODEL, OPEN, HALF_OPEN), (MODEL, HALF_OPEN, CLOSED)]
    breakers.record_success([MODEL])  # closed already: nothing to tell
    assert len(moves) == 5


def test_a_probe_whose_lease_lapsed_is_not_a_second_half_opening(
    breakers: CircuitBreakers, moves: Moves
) -> None:
    breakers.force_open(MODEL, 0.1, "not_found")
    time.sleep(0.15)
    assert breakers.check([MODEL]).probe
    time.sleep(POLICY.probe_lease_s + 0.05)  # the probe's worker died
    assert breakers.check([MODEL]).probe
    assert moves == [(MODEL, CLOSED, OPEN), (MODEL, OPEN, HALF_OPEN)]


def test_forcing_and_resetting(breakers: CircuitBreakers, moves: Moves) -> None:
    breakers.force_open(MODEL, 60, "not_found")
    breakers.force_open(MODEL, 60, "again")  # open already
    breakers.reset(MODEL)
    breakers.reset(MODEL)  # closed already
    assert moves == [(MODEL, CLOSED, OPEN), (MODEL, OPEN, CLOSED)]


def test_each_transition_is_heard_once_by_the_process_that_caused_it(
    redis_connect: Callable[[], redis.Redis],
) -> None:
    heard: dict[str, Moves] = {"a": [], "b": []}
    a, b = (
        CircuitBreakers(
            redis_connect(), POLICY, cache_s=0, on_transition=lambda *m, n=n: heard[n].append(m)
        )
        for n in ("a", "b")
    )
    a.record_failure([MODEL], "server_error")
    b.record_failure([MODEL], "server_error")
    assert heard == {"a": [], "b": [(MODEL, CLOSED, OPEN)]}
    time.sleep(COOLDOWN_PASSED)
    assert a.check([MODEL]).probe
    assert not b.check([MODEL]).allowed  # the probe is a's
    assert heard["a"] == [(MODEL, OPEN, HALF_OPEN)]
    assert len(heard["b"]) == 1
