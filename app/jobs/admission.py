"""Before a call: which key it goes with, and the rate-limit tokens it takes; after: settling.

Every limit is a token bucket per API key (``app.ratelimit``): the provider's (or the key's own)
rpm / tpm / itpm / otpm, and the model's rpm / tpm. A call takes one request token and its
estimated tokens (prompt estimate + max output) from every bucket of one key at once; the key
that can go soonest is used, so several keys add up. Afterwards the estimate is settled against
the usage the provider reports, and what its rate-limit headers say remains is learned.

Pacing by priority: a caller may book tokens ahead by up to ``horizon_s`` (and sleep exactly
that long in its slot) but may not dip into the last ``reserve_s`` worth of each bucket's
refill. Low priority books short and leaves a reserve, so when a low-priority backlog
saturates a provider, a high-priority job still finds a token at once — after the worker's
next free slot, which prefetch 1 and the queue order give to the high queue first.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.constants import Priority
from app.providers.types import RateLimitSnapshot, Usage
from app.ratelimit import (
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
from app.ratelimit.estimate import estimate_request
from app.registry.keys import ProviderKey
from app.registry.service import ModelInfo, ProviderInfo


@dataclass(frozen=True, slots=True)
class Pacing:
    horizon_s: float  # how far ahead this priority may book tokens (and sleep in its slot)
    reserve_s: float  # refill it leaves untouched for higher priorities

    def reserve_fraction(self, burst_s: float) -> float:
        return min(0.5, self.reserve_s / burst_s)


# The limiter asks that horizon <= reserve - one token's time for a reserve to hold.
PACING = {
    Priority.HIGH: Pacing(horizon_s=1.0, reserve_s=0.0),
    Priority.NORMAL: Pacing(horizon_s=0.5, reserve_s=0.25),
    Priority.LOW: Pacing(horizon_s=0.5, reserve_s=0.75),
}


@dataclass(frozen=True, slots=True)
class Permit:
    """The call may go now, with ``key``; ``taken`` is what to settle once it is over."""

    key: ProviderKey
    taken: tuple[tuple[Need, LimitKind, bool], ...] = ()  # (need, kind, provider-level?)
    prompt_estimate: int = 0
    max_out: int = 0
    waited_s: float = 0.0  # slept in the slot for these tokens


@dataclass(frozen=True, slots=True)
class Wait:
    """No tokens within the in-slot budget: set the job aside for ``retry_in_s``."""

    retry_in_s: float


@dataclass(frozen=True, slots=True)
class TooLarge:
    """The call needs more than a bucket can ever hold (e.g. max_tokens above the tpm)."""

    reason: str


@dataclass
class Admission:
    buckets: TokenBuckets | None
    max_in_slot_wait_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = lambda: 0.5
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def admit(
        self,
        provider: ProviderInfo,
        model: ModelInfo,
        keys: tuple[ProviderKey, ...],
        request: dict[str, Any],
        priority: str,
        *,
        calls: int = 1,
    ) -> Permit | Wait | TooLarge:
        """Take tokens for one attempt (sleeping in the slot at most ``max_in_slot_wait_s``):
        ``calls`` requests (an embedding job's inputs may need several) and its tokens."""
        start = next(self._turn) % len(keys)  # spread calls over the keys
        ordered = keys[start:] + keys[:start]
        prompt, out = estimate_request(request, model.max_output_tokens)
        plans = [_needs(provider, model, key, prompt, out, calls) for key in ordered]
        if self.buckets is None or not any(plans):
            return Permit(ordered[0])
        pacing = PACING[Priority(priority)]
        candidates = [Candidate(tuple(need for need, _, _ in plan)) for plan in plans]
        waited = 0.0
        while True:
            result = self.buckets.acquire(
                candidates,
                horizon_s=pacing.horizon_s,
                reserve=pacing.reserve_fraction(provider.burst_s),
            )
            if isinstance(result, Grant):
                if result.delay_s > 0:
                    self.sleep(result.delay_s)
                    waited += result.delay_s
                return Permit(
                    ordered[result.candidate], tuple(plans[result.candidate]), prompt, out, waited
                )
            if isinstance(result, Impossible):
                return TooLarge(result.reason)
            assert isinstance(result, Denied)
            # Spread the retries so that waiting slots don't all wake on the same refill.
            pause = result.retry_in_s * (1.0 + 0.25 * self.jitter())
            if waited + pause > self.max_in_slot_wait_s:
                return Wait(result.retry_in_s)
            self.sleep(pause)
            waited += pause

    def settle(
        self,
        permit: Permit,
        *,
        usage: Usage | None,
        seen: RateLimitSnapshot | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        """Correct the estimate with what the call used; learn what the provider says is left.

        ``usage`` None: the call failed, and only its output reservation is given back (the
        provider may have counted the prompt). ``retry_after_s``: it answered 429, so every
        bucket of that key waits that long.
        """
        if self.buckets is None or not permit.taken:
            return
        adjustments = []
        for need, kind, _ in permit.taken:
            if kind is LimitKind.RPM:
                continue
            used = _used(kind, usage, permit.prompt_estimate, permit.max_out)
            if used != need.amount:
                adjustments.append((need.bucket, need.amount - used))
        observations = []
        if seen is not None:
            for need, kind, provider_level in permit.taken:
                remaining = _remaining(kind, seen)
                if provider_level and remaining is not None:
                    observations.append((need.bucket, float(remaining)))
        if adjustments or observations:
            self.buckets.settle(adjustments, observations)
        if retry_after_s:
            provider_buckets = [need.bucket for need, _, level in permit.taken if level]
            self.buckets.block(provider_buckets, retry_after_s)


def _needs(
    provider: ProviderInfo, model: ModelInfo, key: ProviderKey, prompt: int, out: int, calls: int
) -> list[tuple[Need, LimitKind, bool]]:
    """Every bucket an attempt of ``calls`` calls with ``key`` takes from, and how much."""
    amounts = {
        LimitKind.RPM: float(calls),
        LimitKind.TPM: float(prompt + out),
        LimitKind.ITPM: float(prompt),
        LimitKind.OTPM: float(out),
    }
    limits = key.limits
    provider_limits = {
        LimitKind.RPM: limits.rpm or provider.rpm,
        LimitKind.TPM: limits.tpm or provider.tpm,
        LimitKind.ITPM: limits.itpm or provider.itpm,
        LimitKind.OTPM: limits.otpm or provider.otpm,
    }
    model_limits = {LimitKind.RPM: model.rpm, LimitKind.TPM: model.tpm}
    needs = []
    for kind, limit in provider_limits.items():
        if limit:
            bucket = Bucket(bucket_key(provider.name, key.id, kind), limit, provider.burst_s)
            needs.append((Need(bucket, amounts[kind]), kind, True))
    for kind, limit in model_limits.items():
        if limit:
            scope = f"{key.id}/{model.id}"
            bucket = Bucket(bucket_key(provider.name, scope, kind), limit, provider.burst_s)
            needs.append((Need(bucket, amounts[kind]), kind, False))
    return needs


def _used(kind: LimitKind, usage: Usage | None, prompt_estimate: int, max_out: int) -> float:
    if usage is None:  # failed: keep the prompt charged, give back the output
        return float(prompt_estimate if kind in (LimitKind.TPM, LimitKind.ITPM) else 0)
    if kind is LimitKind.TPM:
        return float(usage.prompt_tokens + usage.completion_tokens)
    if kind is LimitKind.ITPM:
        return float(usage.prompt_tokens)
    return float(usage.completion_tokens)


def _remaining(kind: LimitKind, seen: RateLimitSnapshot) -> int | None:
    return {
        LimitKind.RPM: seen.requests_remaining,
        LimitKind.TPM: seen.tokens_remaining,
        LimitKind.ITPM: seen.input_tokens_remaining,
        LimitKind.OTPM: seen.output_tokens_remaining,
    }[kind]
