"""Continuous token buckets in Redis, shared by every worker thread and process.

The model mirrors the provider simulator's limiter (``app.simulator.limiter``) so that a
gateway configured with a provider's limits never sends a request that provider would refuse:

- **Bucket**: one per-minute limit ``L`` on one scope (say, the tpm of one API key). It holds
  up to ``L * burst_s / 60`` tokens, refills continuously at ``L / 60`` per second and starts
  full (an absent Redis key *is* a full bucket, so idle buckets may expire).
- **Acquire** is all-or-nothing over a candidate's needs (1 request token, the estimated
  tokens...). A candidate goes *now* if every bucket keeps at least its floor after the take.
- **Booking ahead** (GCRA-style): if the buckets would hold enough after a delay ``d`` no
  longer than ``horizon_s``, the tokens are taken *now*, levels go below the floor (even
  negative), and the caller is told to wait exactly ``d``. Concurrent callers thus get
  distinct, increasing delays instead of all polling again at the same instant, and every
  send lands when the provider's bucket holds its need.
- **Reserve**: the share of each bucket's capacity a caller may not dip into (floor =
  ``reserve * capacity``). Batch traffic passes a reserve, interactive traffic passes 0, so
  a low-priority backlog that saturates a bucket still leaves tokens for an interactive call.
  Booking ahead takes below the floor by at most ``rate * horizon_s``, so a reserve-0 caller
  finds at least ``reserve * capacity - rate * horizon_s`` tokens at once: give low
  priorities ``horizon_s <= reserve * burst_s - amount / rate`` to keep that positive.
- **Settlement**: after the answer, give back an over-estimate (or charge an under-estimate),
  never above full. **Observation**: the provider's rate-limit headers may lower a level
  (another client shares the key, or counts differ) but never raise it.
- **Block**: a 429 with ``retry-after: s`` pushes the levels to at most ``-rate * s``, so every
  caller waits at least ``s``.
- **Send jitter**: a call reaches the provider a little after its booked time, and a provider
  bucket that is full meanwhile loses refill the gateway already counted. Calls that arrive
  up to ``send_jitter_s`` late still fit a bucket of capacity ``C`` if the gateway refills
  only to ``C - rate * send_jitter_s`` (a token-bucket stream delayed by up to ``J`` fits a
  bucket ``rate * J`` larger). That ``top`` is what "full" means here; it costs a little of
  the first burst after idleness, never the sustained rate. Capacity checks use ``C``.

Every operation is one Lua script (``app.ratelimit.scripts``) run atomically on Redis' clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from app.constants import RATE_LIMIT_PREFIX
from app.ratelimit import scripts


class LimitKind(StrEnum):
    """The per-minute limits providers publish (and the simulator enforces)."""

    RPM = "rpm"  # requests
    TPM = "tpm"  # prompt + output tokens
    ITPM = "itpm"  # prompt (input) tokens
    OTPM = "otpm"  # output tokens


def bucket_key(provider: str, scope: str, kind: LimitKind | str) -> str:
    """The Redis key of ``kind``'s bucket for ``scope`` (an API key id, ``key/model``...).

    The provider is a hash tag, so a call's buckets (all of one provider) share a Redis
    Cluster slot, as a multi-key script requires.
    """
    return f"{RATE_LIMIT_PREFIX}{{{provider}}}:{scope}:{kind}"


@dataclass(frozen=True, slots=True)
class Bucket:
    """One per-minute limit on one scope, e.g. the rpm of API key ``key_abc`` at sim-openai."""

    key: str  # the full Redis key, from ``bucket_key``
    limit_per_min: float
    burst_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.limit_per_min > 0 or not self.burst_s > 0:
            raise ValueError(f"bucket {self.key}: limit_per_min and burst_s must be positive")

    @property
    def capacity(self) -> float:
        """Tokens a full bucket holds (the simulator's arithmetic, to the last bit)."""
        return self.limit_per_min * self.burst_s / 60.0

    @property
    def rate_per_s(self) -> float:
        return self.limit_per_min / 60.0


@dataclass(frozen=True, slots=True)
class Need:
    """Tokens one call takes from one bucket."""

    bucket: Bucket
    amount: float

    def __post_init__(self) -> None:
        if not self.amount >= 0:
            raise ValueError(f"bucket {self.bucket.key}: a need must be >= 0, not {self.amount}")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One way to make the call (typically one API key): every need, taken all or nothing."""

    needs: tuple[Need, ...]


@dataclass(frozen=True, slots=True)
class Grant:
    """Tokens taken from ``candidates[candidate]``: sleep ``delay_s`` (0: go now), then call."""

    candidate: int
    delay_s: float


@dataclass(frozen=True, slots=True)
class Denied:
    """Nothing taken: no candidate fits the horizon; a take may succeed in ``retry_in_s``."""

    retry_in_s: float


@dataclass(frozen=True, slots=True)
class Impossible:
    """Every candidate needs more than some bucket can ever hold: never retry as is."""

    reason: str


Acquisition = Grant | Denied | Impossible

_GRANTED, _DENIED = 1, 0

# Worker wake-up, request building and connection reuse vary by a few ms; 100 ms leaves room
# for GC pauses and scheduling under load at the cost of 0.1 s of each bucket's burst.
DEFAULT_SEND_JITTER_S = 0.1


class TokenBuckets:
    """Acquire, settle and block rate-limit tokens; safe to share across threads."""

    __slots__ = ("_acquire", "_block", "_client", "_jitter_s", "_level", "_settle")

    def __init__(
        self, client: redis.Redis, *, send_jitter_s: float = DEFAULT_SEND_JITTER_S
    ) -> None:
        """``send_jitter_s``: how much later than booked a call may reach the provider."""
        if not send_jitter_s >= 0:
            raise ValueError(f"send_jitter_s must be >= 0, not {send_jitter_s}")
        self._client = client
        self._jitter_s = float(send_jitter_s)
        # register_script only hashes the text; the server learns it on first use.
        self._acquire = client.register_script(scripts.ACQUIRE)
        self._settle = client.register_script(scripts.SETTLE)
        self._block = client.register_script(scripts.BLOCK)
        self._level = client.register_script(scripts.LEVEL)

    def _run(self, script: Script, keys: list[str], args: list[float]) -> Any:
        # EVALSHA directly: Script.__call__ costs ~5 µs more per call on the hot path.
        try:
            return self._client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:  # first use on this server, or after SCRIPT FLUSH / a failover
            return script(keys, args)

    def acquire(
        self, candidates: Sequence[Candidate], *, horizon_s: float = 0.0, reserve: float = 0.0
    ) -> Acquisition:
        """Take the needs of the candidate that can go soonest, if within ``horizon_s``.

        A candidate can go after ``max((floor + amount - level) / rate)`` over its needs (0
        when every level stays at or above its floor ``reserve * capacity``). The smallest
        such delay wins, ties to the lowest index. ``Grant`` if it is at most ``horizon_s``
        (tokens taken now, wait the delay); else ``Denied`` with that delay, nothing taken.
        ``Impossible`` when every candidate has a need above its bucket's capacity.
        """
        if not candidates:
            raise ValueError("acquire needs at least one candidate")
        if not 0.0 <= reserve < 1.0:
            raise ValueError(f"reserve must be in [0, 1), not {reserve}")
        if not candidates[0].needs:
            return Grant(0, 0.0)  # an unlimited candidate first: nothing to ask Redis
        keys: list[str] = []
        args: list[float] = [self._jitter_s, reserve, max(0.0, horizon_s)]
        for candidate in candidates:
            args.append(len(candidate.needs))
            for need in candidate.needs:
                bucket = need.bucket
                keys.append(bucket.key)
                args += (bucket.limit_per_min, bucket.burst_s, need.amount)
        outcome, index, value = self._run(self._acquire, keys, args)
        if outcome == _GRANTED:
            return Grant(int(index), float(value))
        if outcome == _DENIED:
            return Denied(float(value))
        return Impossible(value.decode() if isinstance(value, bytes) else str(value))

    def settle(
        self,
        adjustments: Sequence[tuple[Bucket, float]],
        observations: Sequence[tuple[Bucket, float]] = (),
    ) -> None:
        """Correct levels once the answer is known, in one round trip.

        First each ``(bucket, remaining)`` observation from the provider's headers lowers
        the level to ``remaining`` if it is higher; then ``adjustments`` are added (positive:
        refund an over-estimate; negative: charge an under-estimate), capped at full. In that
        order because headers describe the provider's bucket when it admitted the call, before
        it gave back the output the call did not use — the refund both sides make afterwards.
        """
        if not adjustments and not observations:
            return
        keys: list[str] = []
        args: list[float] = [self._jitter_s, len(observations)]
        for bucket, value in (*observations, *adjustments):
            keys.append(bucket.key)
            args += (bucket.limit_per_min, bucket.burst_s, value)
        self._run(self._settle, keys, args)

    def block(self, buckets: Sequence[Bucket], seconds: float) -> None:
        """Honour a 429's ``retry-after``: nobody gets tokens from ``buckets`` for ``seconds``."""
        if not buckets or seconds <= 0:
            return
        keys: list[str] = []
        args: list[float] = [self._jitter_s, seconds]
        for bucket in buckets:
            keys.append(bucket.key)
            args += (bucket.limit_per_min, bucket.burst_s)
        self._run(self._block, keys, args)

    def level(self, bucket: Bucket) -> float:
        """Tokens in ``bucket`` now, after refill (negative while booked ahead); for metrics."""
        args = [self._jitter_s, bucket.limit_per_min, bucket.burst_s]
        return float(self._run(self._level, [bucket.key], args))
