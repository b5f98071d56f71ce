"""Circuit breakers per provider and per model, shared by every worker process through Redis.

A breaker stops sending jobs to a target that keeps failing, so that jobs skip straight to
their fallback instead of waiting on it, and lets the target back in carefully:

    CLOSED ──(failure_threshold counted failures in a row)──▶ OPEN for cooldown_s
    OPEN ──(open_until passes)──▶ HALF_OPEN: one probe slot, across all processes
    HALF_OPEN ──(a success)──▶ CLOSED, failures and cool-down back to zero
    HALF_OPEN ──(a failure)──▶ OPEN again, cool-down doubled up to max_cooldown_s

A probe that never reports (its worker was killed) frees the slot after ``probe_lease_s``.
``force_open`` opens a breaker for a given time whatever its counts ("mark the model
unavailable" after ``not_found``); the period ends like any other, with a half-open probe.

Reports carry no caller identity, so they are judged by the state they arrive in:

- while OPEN, a report comes from a call that began before the breaker opened: a failure is
  counted (for the operator), a success is ignored — neither changes the open period;
- while HALF_OPEN, the first report decides, whether or not it comes from the probe holder.

Which failures count is the caller's business. The job runner counts the ones that say the
*target* is unwell — ``server_error``, ``overloaded``, ``timeout``, ``unknown`` and connection
failures — and not the ones about the request or the caller: ``invalid_request``,
``content_filter``, ``context_length``, ``rate_limit`` (our own pacing; the limiter handles it)
or ``auth`` (a key problem; the key is disabled instead). ``not_found`` calls ``force_open``
on the model target.

Cost on the hot path: ``check`` is one Redis round trip for all of a job's targets (one Lua
script), or none at all when this process saw every target closed and clean within the last
``cache_s`` seconds. That cache is the only staleness: a breaker opened by another process is
seen here at most ``cache_s`` later. Refusals, half-open states and targets with failures are
never cached, and ``record_failure`` / ``force_open`` / ``reset`` drop this process's entries
for their targets at once. Successes need reporting only when the verdict was ``dirty`` or a
``probe``: a clean, closed breaker has nothing to reset.

Every change of state is decided inside a script, which says what it changed; the
``on_transition`` callback hears each one as (target, from, to): closed → open, open →
half-open (when the first probe of an open period is let through), half-open → open or
closed, and any → closed on ``reset``. The workers count them as metrics.

Redis layout (under ``BREAKER_PREFIX``): ``state:<target>`` hashes (see
``app.routing.breaker_scripts``) and a ``known`` set of targets with any state, for ``all()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

from app.constants import BREAKER_PREFIX
from app.errors import InvalidInput
from app.routing import breaker_scripts as scripts

STATE_PREFIX = BREAKER_PREFIX + "state:"
REGISTRY_KEY = BREAKER_PREFIX + "known"
MAX_REASON_CHARS = 200


def provider_target(name: str) -> str:
    """The breaker target covering every model of provider ``name``."""
    return f"provider:{name}"


def model_target(model_id: str) -> str:
    """The breaker target of one model."""
    return f"model:{model_id}"


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When breakers open and how long they stay open; the same in every process."""

    failure_threshold: int = 5  # consecutive counted failures that open it
    cooldown_s: float = 15.0  # first open period; doubles on each failed probe ...
    max_cooldown_s: float = 300.0  # ... up to this
    probe_lease_s: float = 90.0  # a half-open probe that never reports frees its slot after this

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if not 0 < self.cooldown_s <= self.max_cooldown_s:
            raise ValueError("need 0 < cooldown_s <= max_cooldown_s")
        if self.probe_lease_s <= 0:
            raise ValueError("probe_lease_s must be positive")


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """One breaker as the API shows it; times are Unix seconds by the Redis clock."""

    target: str
    state: BreakerState
    consecutive_failures: int
    opened_at: float | None
    open_until: float | None
    last_failure: str | None
    forced: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a job may call its targets now, and what it owes the breakers afterwards."""

    allowed: bool
    blocked_by: str | None  # the first target that refused, if any
    probe: bool  # this caller holds a half-open probe slot for some target
    dirty: bool  # some target has failures counted: the caller must report a success


CLEAN = Verdict(allowed=True, blocked_by=None, probe=False, dirty=False)

# A breaker changed state: (target, from, to).
Transition = Callable[[str, BreakerState, BreakerState], None]

# What the scripts answer, per target, as (from, to); other characters: no change.
_MOVED = {
    "o": (BreakerState.CLOSED, BreakerState.OPEN),
    "r": (BreakerState.HALF_OPEN, BreakerState.OPEN),
    "c": (BreakerState.HALF_OPEN, BreakerState.CLOSED),
}
_WAS = {"c": BreakerState.CLOSED, "h": BreakerState.HALF_OPEN, "o": BreakerState.OPEN}


class CircuitBreakers:
    """The breakers of every target, shared through ``client``; one instance per process.

    Thread-safe: the cache is a dict whose single operations are atomic, and the stores that
    race with an invalidation are discarded (see ``_remember_clean``).
    """

    def __init__(
        self,
        client: redis.Redis,
        policy: BreakerPolicy = BreakerPolicy(),
        *,
        cache_s: float = 0.25,
        on_transition: Transition | None = None,
    ) -> None:
        self.policy = policy
        self.cache_s = cache_s
        self._redis = client
        self.on_transition = on_transition
        self._check = client.register_script(scripts.CHECK)
        self._failure = client.register_script(scripts.FAILURE)
        self._success = client.register_script(scripts.SUCCESS)
        self._force_open = client.register_script(scripts.FORCE_OPEN)
        self._reset = client.register_script(scripts.RESET)
        self._peek = client.register_script(scripts.PEEK)
        # target -> time.monotonic() until which it is known closed with no failures.
        self._clean_until: dict[str, float] = {}
        self._invalidations = 0
        self._lock = threading.Lock()

    def check(self, targets: Sequence[str]) -> Verdict:
        """May a job call ``targets`` (e.g. its provider and model) now? Takes probe slots."""
        return self._decide(targets, take_probe=True)

    def usable(self, targets: Sequence[str]) -> bool:
        """Would ``check`` allow ``targets`` now? Read-only: takes no probe slot (for routing)."""
        return self._decide(targets, take_probe=False).allowed

    def record_success(self, targets: Sequence[str]) -> None:
        """A call to ``targets`` succeeded: closes half-open breakers, clears failure counts."""
        if targets:
            moved = self._success(keys=[*_keys(targets), REGISTRY_KEY], args=list(targets))
            self._moved(targets, moved)

    def record_failure(self, targets: Sequence[str], reason: str) -> None:
        """A call to ``targets`` failed in a way that counts (see the module docstring)."""
        if not targets:
            return
        self._forget(targets)
        p = self.policy
        moved = self._failure(
            keys=[*_keys(targets), REGISTRY_KEY],
            args=[
                p.failure_threshold,
                p.cooldown_s,
                p.max_cooldown_s,
                reason[:MAX_REASON_CHARS],
                *targets,
            ],
        )
        self._moved(targets, moved)

    def force_open(self, target: str, seconds: float, reason: str) -> None:
        """Open ``target`` for ``seconds`` whatever its counts (e.g. a model that is gone)."""
        if not seconds > 0:
            raise InvalidInput("a breaker can only be opened for a positive time", param="seconds")
        self._forget([target])
        was = self._force_open(
            keys=[STATE_PREFIX + target, REGISTRY_KEY],
            args=[seconds, reason[:MAX_REASON_CHARS], target, self.policy.cooldown_s],
        )
        self._changed(target, _WAS[_text(was)], BreakerState.OPEN)

    def reset(self, target: str) -> None:
        """Close ``target`` now, forgetting its failures and back-off (an operator's override)."""
        self._forget([target])
        was = self._reset(keys=[STATE_PREFIX + target, REGISTRY_KEY], args=[target])
        self._changed(target, _WAS[_text(was)], BreakerState.CLOSED)

    def status(self, target: str) -> BreakerStatus:
        """``target``'s breaker as it stands now (closed and clean when it has no state)."""
        return self._statuses([target])[0]

    def statuses(self, targets: Sequence[str] = ()) -> list[BreakerStatus]:
        """``targets``' breakers and every other one with any state, sorted by target (a
        target with no state is closed and clean)."""
        members: Any = self._redis.smembers(REGISTRY_KEY)
        every = sorted(set(targets) | {_text(m) for m in members})
        return self._statuses(every) if every else []

    def all(self) -> list[BreakerStatus]:
        """Every breaker with any state (not closed-and-clean), sorted by target, for the API."""
        members: Any = self._redis.smembers(REGISTRY_KEY)
        targets = sorted(_text(m) for m in members)
        if not targets:
            return []
        # A target reset or closed since SMEMBERS has no hash left: skip it.
        return [
            s
            for s in self._statuses(targets)
            if s.state is not BreakerState.CLOSED or s.consecutive_failures > 0
        ]

    def _decide(self, targets: Sequence[str], *, take_probe: bool) -> Verdict:
        if not targets or self._all_cached_clean(targets):
            return CLEAN
        invalidations = self._invalidations
        asked_at = time.monotonic()
        allowed, blocked, probe, dirty, clean, first_probe = self._check(
            keys=_keys(targets), args=[self.policy.probe_lease_s, 1 if take_probe else 0]
        )
        if not allowed:
            return Verdict(False, targets[int(blocked) - 1], probe=False, dirty=False)
        self._remember_clean(targets, _text(clean), asked_at, invalidations)
        if probe and take_probe:
            for target, flag in zip(targets, _text(first_probe), strict=True):
                if flag == "1":
                    self._changed(target, BreakerState.OPEN, BreakerState.HALF_OPEN)
        return Verdict(True, None, probe=bool(probe), dirty=bool(dirty))

    def _moved(self, targets: Sequence[str], answer: bytes | str) -> None:
        for target, code in zip(targets, _text(answer), strict=True):
            if code in _MOVED:
                self._changed(target, *_MOVED[code])

    def _changed(self, target: str, was: BreakerState, now: BreakerState) -> None:
        if self.on_transition is not None and was is not now:
            self.on_transition(target, was, now)

    def _all_cached_clean(self, targets: Sequence[str]) -> bool:
        now = time.monotonic()
        cache = self._clean_until
        return all(cache.get(t, 0.0) > now for t in targets)

    def _remember_clean(
        self, targets: Sequence[str], flags: str, asked_at: float, invalidations: int
    ) -> None:
        if self.cache_s <= 0:
            return
        # Counted from before the round trip, so an entry never outlives cache_s of real state.
        until = asked_at + self.cache_s
        with self._lock:
            # A failure recorded here while we were asking may have opened one of these:
            # the answer we hold predates it, so it must not be cached.
            if self._invalidations != invalidations:
                return
            for target, flag in zip(targets, flags, strict=True):
                if flag == "1":
                    self._clean_until[target] = until

    def _forget(self, targets: Sequence[str]) -> None:
        with self._lock:
            self._invalidations += 1
            for target in targets:
                self._clean_until.pop(target, None)

    def _statuses(self, targets: Sequence[str]) -> list[BreakerStatus]:
        now_text, *rows = self._peek(keys=_keys(targets))
        now = float(_text(now_text))
        return [_status(target, now, row) for target, row in zip(targets, rows, strict=True)]


def _keys(targets: Sequence[str]) -> list[str]:
    return [STATE_PREFIX + t for t in targets]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _float(value: bytes | str | None) -> float | None:
    return None if value is None else float(_text(value))


def _status(target: str, now: float, row: Sequence[bytes | str | None]) -> BreakerStatus:
    fields = dict(zip(scripts.PEEK_FIELDS, row, strict=True))
    open_until = _float(fields["open_until"])
    is_open = fields["state"] is not None and _text(fields["state"]) == "open"
    if not is_open or open_until is None:
        state = BreakerState.CLOSED
    elif now < open_until:
        state = BreakerState.OPEN
    else:
        state = BreakerState.HALF_OPEN
    failures = fields["failures"]
    reason = fields["last_failure"]
    forced = fields["forced"]
    return BreakerStatus(
        target=target,
        state=state,
        consecutive_failures=0 if failures is None else int(_text(failures)),
        opened_at=_float(fields["opened_at"]) if is_open else None,
        open_until=open_until if is_open else None,
        last_failure=None if reason is None else _text(reason),
        forced=is_open and forced is not None and _text(forced) == "1",
    )
