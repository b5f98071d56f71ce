"""Live performance per model, read from the ledger's recent attempts.

Per model, over a sliding window (``Settings.performance_window_s``, 15 minutes by default):
latency p50/p95/p99 of succeeded attempts, success rate, failures by error class and the
sample count. Skipped attempts (no call made: breaker open, no capacity) say nothing about
the model and are left out.

Model selection needs an *expected* latency and success rate even for a model nobody has
called lately, so each :class:`ModelPerformance` also carries priors from the catalog
(``latency_ms_hint``, ``quality``): with fewer than ``min_samples`` successes in the window the
expected latency is the hint; the expected success rate is the live rate shrunk towards
:data:`PRIOR_SUCCESS_RATE` by ``min_samples`` pseudo-attempts, so a couple of early failures do
not condemn a model and a long record speaks for itself.

Computing it is one range scan of ``attempts`` by ``finished_at`` (indexed, migration 0005),
grouped by model. The API keeps the result in a :class:`PerformanceCache` (a
``TimedSnapshot``) reloaded at most every ``performance_refresh_s`` seconds, so a burst of
strategy jobs costs one query every few seconds, not one per job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.registry.catalog import Catalog, load_catalog
from app.registry.snapshot import TimedSnapshot

PRIOR_SUCCESS_RATE = 0.95

_STATS = text(
    """
    SELECT model_id,
           count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms)
               FILTER (WHERE status = 'succeeded') AS pct
      FROM attempts
     WHERE finished_at >= :since AND status <> 'skipped'
     GROUP BY model_id
    """
)
_ERRORS = text(
    """
    SELECT model_id, coalesce(error_class, 'unknown') AS error_class, count(*) AS n
      FROM attempts
     WHERE finished_at >= :since AND status = 'failed'
     GROUP BY 1, 2
    """
)


@dataclass(frozen=True, slots=True)
class Prior:
    """What the catalog says about a model before any traffic: typical latency, quality."""

    latency_ms_hint: int | None = None
    quality: int | None = None


@dataclass(frozen=True, slots=True)
class ModelPerformance:
    """One model's recent record and the expectations selection ranks it by."""

    model_id: str
    samples: int  # succeeded + failed attempts in the window
    succeeded: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    errors: Mapping[str, int] = field(default_factory=dict)
    prior: Prior = Prior()
    min_samples: int = 10

    @property
    def success_rate(self) -> float | None:
        """The observed rate in the window, or None without samples."""
        return self.succeeded / self.samples if self.samples else None

    @property
    def error_rates(self) -> dict[str, float]:
        return {cls: n / self.samples for cls, n in self.errors.items()} if self.samples else {}

    @property
    def latency_source(self) -> Literal["live", "prior", "none"]:
        if self.succeeded >= self.min_samples and self.p50_ms is not None:
            return "live"
        if self.prior.latency_ms_hint is not None:
            return "prior"
        return "live" if self.p50_ms is not None else "none"

    @property
    def expected_latency_ms(self) -> float | None:
        """p50 when the window holds enough successes, else the catalog hint."""
        source = self.latency_source
        if source == "prior":
            return float(self.prior.latency_ms_hint or 0)
        return self.p50_ms if source == "live" else None

    @property
    def expected_success_rate(self) -> float:
        """The live rate, shrunk towards the prior by ``min_samples`` pseudo-attempts."""
        k = self.min_samples
        if self.samples + k == 0:
            return PRIOR_SUCCESS_RATE
        return (self.succeeded + PRIOR_SUCCESS_RATE * k) / (self.samples + k)

    @property
    def quality(self) -> int | None:
        return self.prior.quality


@dataclass(frozen=True)
class PerformanceTable:
    """Every model's performance over one window, as of ``computed_at``."""

    window_s: float
    computed_at: datetime
    models: Mapping[str, ModelPerformance]
    priors: Mapping[str, Prior] = field(default_factory=dict)
    min_samples: int = 10

    def of(self, model_id: str) -> ModelPerformance:
        """The model's record; an empty one (priors only) if it had no attempts lately."""
        found = self.models.get(model_id)
        if found is not None:
            return found
        return ModelPerformance(
            model_id=model_id,
            samples=0,
            succeeded=0,
            p50_ms=None,
            p95_ms=None,
            p99_ms=None,
            prior=self.priors.get(model_id, Prior()),
            min_samples=self.min_samples,
        )

    def all(self, model_ids: Iterable[str]) -> list[ModelPerformance]:
        return [self.of(m) for m in model_ids]


def catalog_priors(catalog: Catalog) -> dict[str, Prior]:
    return {
        m.id: Prior(latency_ms_hint=m.latency_ms_hint, quality=m.quality)
        for m in catalog.models.values()
    }


@lru_cache(maxsize=1)
def shipped_priors() -> dict[str, Prior]:
    """Priors of the packaged catalog (models added at runtime have none)."""
    return catalog_priors(load_catalog())


def empty_table(
    priors: Mapping[str, Prior] | None = None, *, window_s: float = 900.0, min_samples: int = 10
) -> PerformanceTable:
    """No live data at all: every expectation comes from the priors."""
    return PerformanceTable(
        window_s=window_s,
        computed_at=datetime.now(UTC),
        models={},
        priors=shipped_priors() if priors is None else priors,
        min_samples=min_samples,
    )


def compute_performance(
    session: Session,
    *,
    window_s: float,
    min_samples: int,
    priors: Mapping[str, Prior] | None = None,
    now: datetime | None = None,
) -> PerformanceTable:
    """Read the window's attempts and summarise them per model (two grouped range scans)."""
    moment = now or datetime.now(UTC)
    since = moment - timedelta(seconds=window_s)
    known = shipped_priors() if priors is None else priors
    errors: dict[str, dict[str, int]] = {}
    for row in session.execute(_ERRORS, {"since": since}):
        errors.setdefault(row.model_id, {})[row.error_class] = int(row.n)
    models: dict[str, ModelPerformance] = {}
    for row in session.execute(_STATS, {"since": since}):
        pct = row.pct or [None, None, None]
        models[row.model_id] = ModelPerformance(
            model_id=row.model_id,
            samples=int(row.succeeded + row.failed),
            succeeded=int(row.succeeded),
            p50_ms=pct[0],
            p95_ms=pct[1],
            p99_ms=pct[2],
            errors=errors.get(row.model_id, {}),
            prior=known.get(row.model_id, Prior()),
            min_samples=min_samples,
        )
    return PerformanceTable(
        window_s=window_s,
        computed_at=moment,
        models=models,
        priors=known,
        min_samples=min_samples,
    )


PerformanceCache = TimedSnapshot[PerformanceTable]
