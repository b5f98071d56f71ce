"""The simulator's rate limits: the exact reference a gateway's limiter is measured against.

Semantics (mirror these to never provoke a 429):

- Each configured per-minute limit ``L`` (``rpm``, ``tpm``, ``itpm``, ``otpm``) is a
  continuous ``TokenBucket`` of capacity ``L * burst_s / 60`` refilling at ``L / 60`` tokens
  per second. A bucket is created full the first time its scope is used.
- Scope: one set of buckets per (provider, API key) with ``limit_scope="key"`` (no key counts
  as the key ``""``), or one per provider with ``limit_scope="provider"``.
- A request needs 1 ``requests`` token; ``prompt + max_out`` ``tokens`` (tpm);
  ``prompt`` ``input_tokens`` (itpm) and ``max_out`` ``output_tokens`` (otpm), where
  ``max_out`` is the request's max tokens or else the model's ``max_output_tokens``
  (0 for embeddings).
- All or nothing: if any bucket holds less than its need, nothing is taken and the request
  is refused; ``retry_after_s`` is the time until every bucket would hold its need (a need
  above a bucket's capacity can never be met; it is refused with the bucket's time to full).
- After the answer, unused output ``max_out - completion_tokens`` goes back to the tpm and
  otpm buckets, capped at capacity. Answers without a well-formed completion (injected
  5xx, timeouts, malformed bodies) count ``completion_tokens = 0``; an injected 429 gives
  everything back, so no 429 ever costs anything.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.simulator.config import SimProvider
from app.simulator.faults import Fault, RateLimitFacts, SimError

BUCKET_KINDS = ("requests", "tokens", "input_tokens", "output_tokens")
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class BucketView:
    """A bucket as the rate-limit headers report it."""

    limit: int  # per minute, as configured
    remaining: int  # whole tokens left now
    reset_s: float  # seconds until the bucket is full again


class TokenBucket:
    """A continuous token bucket for one per-minute limit."""

    __slots__ = ("capacity", "level", "limit", "rate", "updated")

    def __init__(self, limit_per_minute: int, burst_s: float, now: float) -> None:
        self.limit = limit_per_minute
        self.capacity = limit_per_minute * burst_s / 60.0
        self.rate = limit_per_minute / 60.0
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        """Add what has dripped in since the last update."""
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def wait_for(self, need: float) -> float:
        """Seconds until the bucket holds ``need`` (0 now, ``inf`` if it never can)."""
        if need <= self.level + _EPSILON:
            return 0.0
        if need > self.capacity + _EPSILON:
            return math.inf
        return (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        self.level -= amount

    def give(self, amount: float, now: float) -> None:
        """Return ``amount`` tokens, never beyond capacity."""
        self.refill(now)
        self.level = min(self.capacity, self.level + amount)

    def view(self) -> BucketView:
        reset_s = max(0.0, (self.capacity - self.level) / self.rate)
        return BucketView(self.limit, max(0, math.floor(self.level + _EPSILON)), reset_s)


class Admission:
    """Tokens taken for one admitted request, settled once when its answer is known."""

    __slots__ = ("_buckets", "_clock", "_output", "_settled", "_taken")

    def __init__(
        self,
        buckets: dict[str, TokenBucket],
        taken: dict[str, float],
        output: int,
        clock: Callable[[], float],
    ) -> None:
        self._buckets = buckets
        self._taken = taken
        self._output = output
        self._clock = clock
        self._settled = False

    def views(self) -> dict[str, BucketView]:
        return {kind: bucket.view() for kind, bucket in self._buckets.items()}

    def settle(self, completion_tokens: int) -> None:
        """Give back the output that was reserved but not generated."""
        if self._settled:
            return
        self._settled = True
        unused = max(0, self._output - completion_tokens)
        if unused:
            now = self._clock()
            for kind in ("tokens", "output_tokens"):
                bucket = self._buckets.get(kind)
                if bucket is not None:
                    bucket.give(unused, now)

    def release(self) -> None:
        """Give back everything taken (the answer was a 429 after all)."""
        if self._settled:
            return
        self._settled = True
        now = self._clock()
        for kind, amount in self._taken.items():
            self._buckets[kind].give(amount, now)


class ProviderLimiter:
    """Every rate-limit bucket of one simulated provider."""

    def __init__(
        self,
        limits: dict[str, int],
        *,
        burst_s: float,
        per_key: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = limits
        self._burst_s = burst_s
        self._per_key = per_key
        self._clock = clock
        self._scopes: dict[str, dict[str, TokenBucket]] = {}

    @classmethod
    def for_provider(
        cls, spec: SimProvider, clock: Callable[[], float] = time.monotonic
    ) -> ProviderLimiter | None:
        """The limiter ``spec`` configures, or None when it sets no limits."""
        configured = (spec.rpm, spec.tpm, spec.itpm, spec.otpm)
        limits = {k: v for k, v in zip(BUCKET_KINDS, configured, strict=True) if v is not None}
        if not limits:
            return None
        return cls(limits, burst_s=spec.burst_s, per_key=spec.limit_scope == "key", clock=clock)

    def reset(self) -> None:
        """Forget every bucket; each starts full again on its next use."""
        self._scopes.clear()

    def _buckets(self, key: str | None, now: float) -> dict[str, TokenBucket]:
        scope = (key or "") if self._per_key else ""
        buckets = self._scopes.get(scope)
        if buckets is None:
            buckets = {k: TokenBucket(v, self._burst_s, now) for k, v in self._limits.items()}
            self._scopes[scope] = buckets
        else:
            for bucket in buckets.values():
                bucket.refill(now)
        return buckets

    def views(self, key: str | None) -> dict[str, BucketView]:
        """The buckets of ``key``'s scope as they stand now."""
        buckets = self._buckets(key, self._clock())
        return {kind: bucket.view() for kind, bucket in buckets.items()}

    def admit(self, key: str | None, prompt_tokens: int, output_tokens: int) -> Admission:
        """Take what the request needs from every bucket, or raise a RATE_LIMIT ``SimError``."""
        now = self._clock()
        buckets = self._buckets(key, now)
        needs = {
            "requests": 1,
            "tokens": prompt_tokens + output_tokens,
            "input_tokens": prompt_tokens,
            "output_tokens": output_tokens,
        }
        refusal: RateLimitFacts | None = None
        retry_after_s = 0.0
        for kind, bucket in buckets.items():
            need = needs[kind]
            wait = bucket.wait_for(need)
            if wait == 0.0:
                continue
            too_large = math.isinf(wait)
            if too_large:
                wait = max(bucket.view().reset_s, 1.0)
            retry_after_s = max(retry_after_s, wait)
            if refusal is None or (too_large, wait) > (refusal.too_large, refusal.retry_after_s):
                used = math.ceil(bucket.capacity - bucket.level - _EPSILON)
                refusal = RateLimitFacts(kind, bucket.limit, used, need, wait, too_large)
        if refusal is not None:
            refusal.retry_after_s = retry_after_s
            raise SimError(Fault.RATE_LIMIT, rate_limit=refusal)
        taken = {kind: float(needs[kind]) for kind in buckets}
        for kind, bucket in buckets.items():
            bucket.take(taken[kind])
        return Admission(buckets, taken, output_tokens, self._clock)
