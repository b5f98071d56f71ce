"""One worker process of the concurrency test: threads that acquire, sleep, and "send".

    python hammer.py REDIS_URL START_AT DURATION_S THREADS SEED

From ``START_AT`` (unix seconds) for ``DURATION_S``, each thread acquires tokens for a call
of random size from two API keys, sleeps the granted delay (or the denial's retry time) and
records the moment it would have sent the call. Prints one JSON line per send:
``[send_time, key, prompt_tokens, output_tokens, late_s]``, where ``late_s`` bounds how much
later than booked the send came (measured from before the acquire, so an over-estimate).
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time

import redis

from app.ratelimit import Bucket, Candidate, Grant, Impossible, Need, TokenBuckets, bucket_key

PROVIDER = "sim-hammer"
KEYS = ("key_a", "key_b")
RPM, TPM, BURST_S = 3000, 120_000, 0.5
HORIZON_S = 0.3
RESERVES = (0.0, 0.25)  # threads alternate: interactive and batch traffic share the buckets


def candidates(prompt: int, output: int) -> list[Candidate]:
    return [
        Candidate(
            (
                Need(Bucket(bucket_key(PROVIDER, key, "rpm"), RPM, BURST_S), 1),
                Need(Bucket(bucket_key(PROVIDER, key, "tpm"), TPM, BURST_S), prompt + output),
            )
        )
        for key in KEYS
    ]


def worker(
    buckets: TokenBuckets, reserve: float, seed: int, deadline: float, sends: list[list[object]]
) -> None:
    rng = random.Random(seed)
    while time.time() < deadline:
        prompt, output = rng.randint(5, 60), rng.randint(5, 60)
        asked_at = time.time()
        outcome = buckets.acquire(candidates(prompt, output), horizon_s=HORIZON_S, reserve=reserve)
        if isinstance(outcome, Impossible):
            raise AssertionError(outcome.reason)
        if isinstance(outcome, Grant):
            time.sleep(outcome.delay_s)
            sent_at = time.time()
            late_s = sent_at - asked_at - outcome.delay_s
            sends.append([sent_at, KEYS[outcome.candidate], prompt, output, late_s])
        else:
            time.sleep(outcome.retry_in_s)


def main(url: str, start_at: float, duration_s: float, threads: int, seed: int) -> None:
    client = redis.Redis.from_url(url, max_connections=threads)
    buckets = TokenBuckets(client)
    sends: list[list[object]] = []
    time.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + duration_s
    pool = [
        threading.Thread(
            target=worker,
            args=(buckets, RESERVES[i % len(RESERVES)], seed * 1000 + i, deadline, sends),
        )
        for i in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    client.close()
    for send in sends:
        print(json.dumps(send))


if __name__ == "__main__":
    url, start_at, duration_s, threads, seed = sys.argv[1:6]
    main(url, float(start_at), float(duration_s), int(threads), int(seed))
