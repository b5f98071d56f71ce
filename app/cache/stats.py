"""The cache's numbers in ``GET /v1/stats``: hits, misses, hit rate and what hits saved."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from app.cache.directives import EXACT, SEMANTIC
from app.cache.tally import HIT, MISS, outcome_of
from app.ledger.cost import format_usd


class CacheModeOut(BaseModel):
    hits: int
    misses: int
    hit_rate: float | None = Field(description="hits / (hits + misses).")
    cost_saved_usd: str = Field(description="What the answers served cost their source jobs.")


class CacheStatsOut(BaseModel):
    """Jobs the response cache took part in: a ``hit`` was served from the cache (no
    provider call, cost 0), a ``miss`` ran. ``by_mode``: hits by the lookup that found the
    answer, misses by the mode asked for."""

    hits: int
    misses: int
    hit_rate: float | None = Field(description="hits / (hits + misses).")
    cost_saved_usd: str = Field(description="Exact decimal, USD: what the hits did not cost.")
    by_mode: dict[str, CacheModeOut]


def _rate(hits: int, misses: int) -> float | None:
    return round(hits / (hits + misses), 4) if hits + misses else None


def cache_stats(jobs: dict[str, int], saved: dict[str, Decimal]) -> CacheStatsOut | None:
    """From finished jobs counted by ``jobs.cache`` ("exact:hit", ...) and what each such
    group saved; None when the cache took part in none of them."""
    counts = {(mode, outcome): 0 for mode in (EXACT, SEMANTIC) for outcome in (HIT, MISS)}
    savings = {mode: Decimal(0) for mode in (EXACT, SEMANTIC)}
    for cache, n in jobs.items():
        parsed = outcome_of(cache)
        if parsed is None or parsed not in counts:
            continue
        counts[parsed] += n
        savings[parsed[0]] += saved.get(cache, Decimal(0))
    if not any(counts.values()):
        return None
    by_mode = {
        mode: CacheModeOut(
            hits=counts[(mode, HIT)],
            misses=counts[(mode, MISS)],
            hit_rate=_rate(counts[(mode, HIT)], counts[(mode, MISS)]),
            cost_saved_usd=format_usd(savings[mode]) or "0",
        )
        for mode in (EXACT, SEMANTIC)
    }
    hits = sum(m.hits for m in by_mode.values())
    misses = sum(m.misses for m in by_mode.values())
    return CacheStatsOut(
        hits=hits,
        misses=misses,
        hit_rate=_rate(hits, misses),
        cost_saved_usd=format_usd(sum(savings.values(), Decimal(0))) or "0",
        by_mode=by_mode,
    )
