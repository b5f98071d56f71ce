"""TokenBuckets on a real Redis: acquire, booking ahead, reserve, settle, observe, block, TTL.

Limits are chosen so that the few milliseconds between two calls refill a negligible share of
a token, or the assertions allow for it explicitly.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest
import redis

from app.ratelimit import (
    Acquisition,
    Bucket,
    Candidate,
    Denied,
    Grant,
    Impossible,
    LimitKind,
    Need,
    TokenBuckets,
    bucket_key,
)

# 600/min with a 1 s burst: capacity 10, 10 tokens per second.
FAST = (600.0, 1.0)
# 10/min over 60 s: capacity 10, one token per 6 s, so levels barely move during a test.
SLOW = (10.0, 60.0)


def bucket(kind: LimitKind, limits: tuple[float, float], scope: str = "key_a") -> Bucket:
    limit, burst_s = limits
    return Bucket(bucket_key("sim-test", scope, kind), limit, burst_s)


def one(*needs: tuple[Bucket, float]) -> list[Candidate]:
    return [Candidate(tuple(Need(b, amount) for b, amount in needs))]


def test_bucket_arithmetic_matches_the_simulator() -> None:
    rpm = Bucket("k", limit_per_min=600, burst_s=6)
    assert (rpm.capacity, rpm.rate_per_s) == (60.0, 10.0)
    assert bucket_key("sim-openai", "key_abc", LimitKind.RPM) == "sb:rl:{sim-openai}:key_abc:rpm"
    with pytest.raises(ValueError, match="positive"):
        Bucket("k", limit_per_min=0)
    with pytest.raises(ValueError, match=">= 0"):
        Need(rpm, -1)


def test_fresh_bucket_grants_its_capacity_then_denies(buckets: TokenBuckets) -> None:
    rpm = bucket(LimitKind.RPM, FAST)
    for _ in range(10):
        assert buckets.acquire(one((rpm, 1))) == Grant(0, 0.0)
    denied = buckets.acquire(one((rpm, 1)))
    assert isinstance(denied, Denied)
    # One token short at 10 per second, less what dripped in since the first take.
    assert 0.05 < denied.retry_in_s <= 0.1


def test_levels_refill_continuously_up_to_capacity(buckets: TokenBuckets) -> None:
    rpm = bucket(LimitKind.RPM, (6000.0, 0.1))  # capacity 10 at 100 per second
    assert buckets.level(rpm) == 10.0  # absent means full
    assert isinstance(buckets.acquire(one((rpm, 10))), Grant)
    assert buckets.level(rpm) < 0.5
    time.sleep(0.05)
    assert 4.9 <= buckets.level(rpm) <= 9.0
    time.sleep(0.1)
    assert buckets.level(rpm) == 10.0


def test_all_or_nothing(buckets: TokenBuckets) -> None:
    rpm = bucket(LimitKind.RPM, SLOW)
    tpm = bucket(LimitKind.TPM, (100.0, 60.0))  # capacity 100
    assert buckets.acquire(one((rpm, 1), (tpm, 80))) == Grant(0, 0.0)
    denied = buckets.acquire(one((rpm, 1), (tpm, 50)))
    assert isinstance(denied, Denied)
    # tpm is 30 short at 100/60 per second; rpm had room but lost nothing.
    assert denied.retry_in_s == pytest.approx(30 / (100 / 60), abs=0.1)
    assert buckets.level(rpm) == pytest.approx(9.0, abs=0.01)
    assert buckets.level(tpm) == pytest.approx(20.0, abs=0.1)


def test_a_bucket_named_twice_must_hold_the_sum(buckets: TokenBuckets) -> None:
    rpm = bucket(LimitKind.RPM, SLOW)
    assert isinstance(buckets.acquire(one((rpm, 6), (rpm, 5))), Impossible)
    buckets.acquire(one((rpm, 2)))
    assert isinstance(buckets.acquire(one((rpm, 5), (rpm, 4))), Denied)
    assert buckets.acquire(one((rpm, 5), (rpm, 3))) == Grant(0, 0.0)
    assert buckets.level(rpm) == pytest.approx(0.0, abs=0.01)


def test_booking_ahead_spaces_sends_and_stops_at_the_horizon(buckets: TokenBuckets) -> None:
    rpm = bucket(LimitKind.RPM, FAST)
    buckets.acquire(one((rpm, 10)))
    delays = []
    while isinstance(grant := buckets.acquire(one((rpm, 1)), horizon_s=0.45), Grant):
        delays.append(grant.delay_s)
    # Sends land 0.1 s apart; each delay is a little shorter by the time since the first take.
    assert len(delays) == 4
    assert [round(d, 1) for d in delays] == [0.1, 0.2, 0.3, 0.4]
    assert isinstance(grant, Denied)
    assert 0.45 < grant.retry_in_s <= 0.5
    assert buckets.level(rpm) == pytest.approx(-4.0, abs=0.5)


def test_concurrent_callers_get_distinct_increasing_delays(
    buckets: TokenBuckets, lone_redis_url: str
) -> None:
    rpm = bucket(LimitKind.RPM, FAST)
    buckets.acquire(one((rpm, 10)))
    callers = 12
    barrier = threading.Barrier(callers)
    results: list[Acquisition] = []

    def caller() -> None:
        with redis.Redis.from_url(lone_redis_url) as client:
            own = TokenBuckets(client, send_jitter_s=0.0)
            own.level(rpm)  # connected and scripts loaded before the race starts
            barrier.wait()
            results.append(own.acquire(one((rpm, 1)), horizon_s=0.85))

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    delays = sorted(r.delay_s for r in results if isinstance(r, Grant))
    denials = [r for r in results if isinstance(r, Denied)]
    assert 8 <= len(delays) <= 9
    assert len(delays) + len(denials) == callers
    assert all(0 < d <= 0.85 for d in delays)
    assert all(later - earlier > 0.05 for earlier, later in itertools.pairwise(delays))
    assert all(d.retry_in_s > 0.85 for d in denials)


def test_reserve_keeps_tokens_for_callers_without_one(buckets: TokenBuckets) -> None:
    rpm = bucket(LimitKind.RPM, SLOW)
    low = [buckets.acquire(one((rpm, 1)), reserve=0.3) for _ in range(8)]
    assert low[:7] == [Grant(0, 0.0)] * 7
    assert isinstance(low[7], Denied)
    assert low[7].retry_in_s == pytest.approx(6.0, abs=0.1)  # one token at 1/6 per second
    high = [buckets.acquire(one((rpm, 1))) for _ in range(4)]
    assert high[:3] == [Grant(0, 0.0)] * 3
    assert isinstance(high[3], Denied)


def test_reserve_outlasts_low_priority_bookings_within_the_rule(buckets: TokenBuckets) -> None:
    rpm = bucket(LimitKind.RPM, FAST)
    # reserve 0.5 of 10 tokens, horizon 0.3 s = 3 tokens: 2 stay for reserve-0 callers.
    while isinstance(buckets.acquire(one((rpm, 1)), reserve=0.5, horizon_s=0.3), Grant):
        pass
    assert buckets.level(rpm) >= 1.9
    assert buckets.acquire(one((rpm, 1))) == Grant(0, 0.0)


def test_several_candidates_add_up_their_throughput(buckets: TokenBuckets) -> None:
    key_a = bucket(LimitKind.RPM, SLOW, scope="key_a")
    key_b = bucket(LimitKind.RPM, SLOW, scope="key_b")
    candidates = [Candidate((Need(key_a, 1),)), Candidate((Need(key_b, 1),))]
    grants = []
    while isinstance(outcome := buckets.acquire(candidates), Grant):
        grants.append(outcome.candidate)
    assert grants == [0] * 10 + [1] * 10  # ties go to the lowest index
    assert isinstance(outcome, Denied)


def test_the_candidate_that_can_go_soonest_wins(buckets: TokenBuckets) -> None:
    key_a = bucket(LimitKind.RPM, FAST, scope="key_a")
    key_b = bucket(LimitKind.RPM, FAST, scope="key_b")
    buckets.acquire(one((key_a, 10)))
    buckets.acquire(one((key_b, 9)))
    candidates = [Candidate((Need(key_a, 2),)), Candidate((Need(key_b, 2),))]
    grant = buckets.acquire(candidates, horizon_s=1.0)
    assert isinstance(grant, Grant)
    assert grant.candidate == 1
    assert 0 < grant.delay_s <= 0.1
    assert buckets.level(key_a) < 1.0  # the loser kept what it had


def test_a_need_above_capacity_is_impossible(buckets: TokenBuckets) -> None:
    tpm = bucket(LimitKind.TPM, (1000.0, 60.0))
    outcome = buckets.acquire(one((tpm, 1001)), horizon_s=3600)
    assert isinstance(outcome, Impossible)
    assert tpm.key in outcome.reason
    assert "1001" in outcome.reason
    assert "1000" in outcome.reason
    # One impossible candidate does not sink a possible one.
    other = bucket(LimitKind.TPM, (2000.0, 60.0), scope="key_b")
    candidates = [Candidate((Need(tpm, 1500),)), Candidate((Need(other, 1500),))]
    assert buckets.acquire(candidates) == Grant(1, 0.0)


def test_a_first_candidate_without_limits_goes_at_once(buckets: TokenBuckets) -> None:
    assert buckets.acquire([Candidate(())]) == Grant(0, 0.0)
    with pytest.raises(ValueError, match="candidate"):
        buckets.acquire([])
    with pytest.raises(ValueError, match="reserve"):
        buckets.acquire(one((bucket(LimitKind.RPM, SLOW), 1)), reserve=1.0)


def test_settle_refunds_and_charges_within_capacity(buckets: TokenBuckets) -> None:
    tpm = bucket(LimitKind.TPM, (100.0, 60.0))
    buckets.acquire(one((tpm, 80)))
    buckets.settle([(tpm, 30)])
    assert buckets.level(tpm) == pytest.approx(50.0, abs=0.1)
    buckets.settle([(tpm, -70)])
    assert buckets.level(tpm) == pytest.approx(-20.0, abs=0.1)
    buckets.settle([(tpm, 1000)])
    assert buckets.level(tpm) == 100.0


def test_observations_lower_levels_but_never_raise_them(buckets: TokenBuckets) -> None:
    rpm = bucket(LimitKind.RPM, SLOW)
    tpm = bucket(LimitKind.TPM, (100.0, 60.0))
    buckets.acquire(one((rpm, 5), (tpm, 50)))
    # Refund 10 tokens, then the provider says rpm has 2 left and tpm 90 (more than ours).
    buckets.settle([(tpm, 10)], [(rpm, 2), (tpm, 90)])
    assert buckets.level(rpm) == pytest.approx(2.0, abs=0.01)
    assert buckets.level(tpm) == pytest.approx(60.0, abs=0.1)


def test_an_observation_comes_before_the_refund_it_does_not_include(
    buckets: TokenBuckets,
) -> None:
    # The provider's headers were written at admission, before it gave back unused output;
    # both sides then refund it. Applying the observation last would undo our refund.
    tpm = bucket(LimitKind.TPM, (100.0, 60.0))
    buckets.acquire(one((tpm, 50)))
    buckets.settle([(tpm, 10)], [(tpm, 45)])
    assert buckets.level(tpm) == pytest.approx(55.0, abs=0.1)


def test_a_settlement_that_changes_nothing_writes_nothing(
    buckets: TokenBuckets, rl_client: redis.Redis
) -> None:
    rpm = bucket(LimitKind.RPM, SLOW)
    buckets.settle([(rpm, 5)], [(rpm, 20)])
    assert rl_client.exists(rpm.key) == 0


def test_block_makes_every_caller_wait_the_retry_after(buckets: TokenBuckets) -> None:
    rpm = bucket(LimitKind.RPM, FAST)
    tpm = bucket(LimitKind.TPM, (60_000.0, 1.0))
    buckets.block([rpm, tpm], 2.0)
    assert buckets.level(rpm) == pytest.approx(-20.0, abs=0.1)
    denied = buckets.acquire(one((rpm, 1), (tpm, 1)))
    assert isinstance(denied, Denied)
    assert denied.retry_in_s == pytest.approx(2.1, abs=0.02)  # 2 s, then one token at 10/s
    grant = buckets.acquire(one((rpm, 1)), horizon_s=3.0)
    assert isinstance(grant, Grant)
    assert grant.delay_s == pytest.approx(2.1, abs=0.02)


def test_buckets_expire_once_they_would_be_full(
    buckets: TokenBuckets, rl_client: redis.Redis
) -> None:
    rpm = bucket(LimitKind.RPM, SLOW)  # refills 6 s per token
    buckets.acquire(one((rpm, 4)))
    assert rl_client.hgetall(rpm.key).keys() == {b"level", b"ts"}
    ttl_ms = rl_client.pttl(rpm.key)
    assert 24_000 < ttl_ms <= 25_000  # 4 tokens to refill, plus a 1 s margin
    buckets.block([rpm], 10.0)
    assert 70_000 < rl_client.pttl(rpm.key) <= 71_000  # from -1.67 to 10 tokens, plus 1 s


def test_scripts_reload_after_a_script_flush(buckets: TokenBuckets, rl_client: redis.Redis) -> None:
    rpm = bucket(LimitKind.RPM, SLOW)
    assert buckets.acquire(one((rpm, 1))) == Grant(0, 0.0)
    rl_client.script_flush()
    assert buckets.acquire(one((rpm, 1))) == Grant(0, 0.0)
    assert buckets.level(rpm) == pytest.approx(8.0, abs=0.01)


def test_the_send_jitter_allowance_keeps_headroom(rl_client: redis.Redis) -> None:
    buckets = TokenBuckets(rl_client, send_jitter_s=0.1)
    rpm = bucket(LimitKind.RPM, FAST)  # capacity 10 at 10/s: full is 10 - 10 × 0.1 = 9
    assert buckets.level(rpm) == 9.0
    assert [buckets.acquire(one((rpm, 1))) for _ in range(9)] == [Grant(0, 0.0)] * 9
    assert isinstance(buckets.acquire(one((rpm, 1))), Denied)
    buckets.settle([(rpm, 100)])
    assert buckets.level(rpm) == 9.0
    # What the provider's bucket can hold is still possible: booked until it would be there.
    tpm = bucket(LimitKind.TPM, FAST)
    grant = buckets.acquire(one((tpm, 10)), horizon_s=1.0)
    assert isinstance(grant, Grant)
    assert grant.delay_s == pytest.approx(0.1)
    assert isinstance(buckets.acquire(one((tpm, 10.5))), Impossible)
    with pytest.raises(ValueError, match="send_jitter_s"):
        TokenBuckets(rl_client, send_jitter_s=-1.0)
