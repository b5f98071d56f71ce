"""The API process's live performance table: one cached snapshot, reloaded every few seconds.

Made on first use from the app's state (so ``app.main`` needs no change to build it) and kept
on ``app.state``; every request in the process shares it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.api.deps import State
from app.routing.performance import PerformanceCache, PerformanceTable, compute_performance


async def _performance(request: Request, state: State) -> PerformanceCache:
    cache: PerformanceCache | None = getattr(request.app.state, "performance", None)
    if cache is None:
        settings = state.settings

        def load() -> PerformanceTable:
            with state.sessions() as session:
                return compute_performance(
                    session,
                    window_s=settings.performance_window_s,
                    min_samples=settings.performance_min_samples,
                )

        cache = PerformanceCache(load, ttl_s=settings.performance_refresh_s)
        request.app.state.performance = cache
    return cache


CurrentPerformance = Annotated[PerformanceCache, Depends(_performance)]
