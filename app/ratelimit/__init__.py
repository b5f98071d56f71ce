"""Rate-limit tokens taken in Redis before every provider call, so the gateway never gets a 429.

    buckets = TokenBuckets(redis_client)
    rpm = Bucket(bucket_key("sim-openai", key_id, LimitKind.RPM), limit_per_min=500)
    tpm = Bucket(bucket_key("sim-openai", key_id, LimitKind.TPM), limit_per_min=200_000)
    need = estimate_prompt_tokens(messages, tools) + max_output(max_tokens, model_max)
    match buckets.acquire([Candidate((Need(rpm, 1), Need(tpm, need)))], horizon_s=2.0):
        case Grant(candidate, delay_s): ...      # sleep delay_s, call, then settle
        case Denied(retry_in_s): ...             # put the job back for retry_in_s
        case Impossible(reason): ...             # fail or fall back: it never fits

Each limit is a continuous token bucket exactly like the provider simulator's
(``app.simulator.limiter``): capacity ``limit * burst_s / 60``, refill ``limit / 60`` per
second, full when first used, all-or-nothing takes. On top of it the gateway books ahead
(tokens taken now for a send after a delay), keeps a ``reserve`` for higher priorities,
settles estimates against usage, lowers levels to what the provider reports, and blocks on
429. ``buckets`` explains each; ``estimate`` explains the token estimate.
"""

from __future__ import annotations

from app.ratelimit.buckets import (
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
from app.ratelimit.estimate import estimate_input_tokens, estimate_prompt_tokens, max_output

__all__ = [
    "Acquisition",
    "Bucket",
    "Candidate",
    "Denied",
    "Grant",
    "Impossible",
    "LimitKind",
    "Need",
    "TokenBuckets",
    "bucket_key",
    "estimate_input_tokens",
    "estimate_prompt_tokens",
    "max_output",
]
