"""Many threads in several processes share the buckets, and the simulator admits every send.

Two processes of eight threads each (``hammer.py``) acquire with booking ahead and mixed
reserves, sleep what they are told and record when they would send. Replaying those send
times through the simulator's own limiter, configured with the same limits, must refuse none:
that is the gateway's promise of zero provoked 429s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import redis

from app.ratelimit.buckets import DEFAULT_SEND_JITTER_S
from app.simulator.faults import SimError
from app.simulator.limiter import ProviderLimiter

HAMMER = Path(__file__).with_name("hammer.py")
# Must match hammer.py.
RPM, TPM, BURST_S = 3000, 120_000, 0.5
PROCESSES, THREADS, DURATION_S = 2, 8, 1.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sends_from_many_threads_and_processes_never_exceed_the_limits(
    lone_redis_url: str, rl_client: redis.Redis
) -> None:
    start_at = time.time() + 0.8  # time for both interpreters to start
    command = [sys.executable, str(HAMMER), lone_redis_url, str(start_at), str(DURATION_S)]
    children = [
        subprocess.Popen(
            [*command, str(THREADS), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(PROCESSES)
    ]
    sends: list[tuple[float, str, int, int]] = []
    latest = 0.0
    for child in children:
        out, err = child.communicate(timeout=30)
        assert child.returncode == 0, err
        assert err == ""
        for line in out.splitlines():
            send_time, key, prompt, output, late_s = json.loads(line)
            sends.append((send_time, key, prompt, output))
            latest = max(latest, late_s)
    sends.sort()

    clock = Clock()
    simulator = ProviderLimiter(
        {"requests": RPM, "tokens": TPM}, burst_s=BURST_S, per_key=True, clock=clock
    )
    refused = []
    for send_time, key, prompt, output in sends:
        clock.now = send_time
        try:
            simulator.admit(key, prompt, output)
        except SimError as error:
            refused.append((send_time - sends[0][0], key, error.rate_limit))
    # The allowance covers sends up to DEFAULT_SEND_JITTER_S late; a machine too loaded to
    # wake a thread in time would make a real gateway late too, so say so when it fails.
    assert refused == [], (
        f"latest send {latest * 1000:.0f} ms late (allowance {DEFAULT_SEND_JITTER_S} s)"
    )

    # Both keys were used, and the limits, not the limiter, bounded throughput: at least
    # 60% of what two keys' tpm allow (a full burst plus the refill) went out.
    assert {key for _, key, _, _ in sends} == {"key_a", "key_b"}
    span = sends[-1][0] - sends[0][0]
    allowed = 2 * (TPM * BURST_S / 60 + TPM / 60 * span)
    used = sum(prompt + output for _, _, prompt, output in sends)
    assert used >= 0.6 * allowed
