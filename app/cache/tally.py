"""What the cache counts: one outcome per job that took part, once that outcome committed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

HIT, MISS = "hit", "miss"


@dataclass(frozen=True, slots=True)
class CacheCount:
    """A job's cache outcome: served (``hit``, by the lookup that found it) or run (``miss``,
    by the mode it asked for), under the model that answered it or it was queued for."""

    mode: str  # exact | semantic
    outcome: str  # hit | miss
    provider: str
    model: str
    saved_usd: Decimal = Decimal(0)
    priority: str = ""  # a hit served as it was submitted: counted as a job that ended


Tally = Callable[[CacheCount], None]


def untallied(count: CacheCount) -> None:
    """Counts nothing."""


def outcome_of(cache: str | None) -> tuple[str, str] | None:
    """``jobs.cache`` ("exact:hit", ...) as (mode, outcome)."""
    if not cache:
        return None
    mode, _, outcome = cache.partition(":")
    return mode, outcome
