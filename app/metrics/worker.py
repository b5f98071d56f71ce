"""A worker process's metrics: what its runner, breakers, reconciler and webhook pool did.

One ``WorkerMetrics`` per process (``worker_metrics()``), on a registry of its own that the
process serves at ``/metrics`` (``app.metrics.exposition``). It is the runner's observer
(``app.jobs.observer``): every count comes from an outcome already committed, so a claim
lost before recording counts nothing, and a job is counted once however often its message
was delivered. Per job it costs a few dictionary lookups and additions, no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from prometheus_client import CollectorRegistry

from app.cache.tally import CacheCount
from app.config import Settings
from app.jobs.admission import Permit, TooLarge, Wait
from app.jobs.claims import Claim
from app.jobs.observer import JobEnd
from app.jobs.reconcile import ReconcileReport
from app.ledger.record import AttemptRecord, Failed, Outcome, Requeued, Succeeded
from app.metrics import families
from app.metrics.exposition import MetricsServer, metrics_token
from app.providers.errors import ErrorKind
from app.routing.breakers import BreakerState

# A job requeued without an attempt: its model left the registry (app.jobs.execution._gone).
MODEL_GONE = ErrorKind.NOT_FOUND.value
_WEBHOOK_OUTCOMES = {"pending": "retry"}  # the event's status after the try -> outcome label


class WorkerMetrics:
    """The counters and histograms of one worker process, and the hooks that feed them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.jobs_finished = families.jobs_finished(r)
        self.job_duration = families.job_duration(r)
        self.queue_wait = families.queue_wait(r)
        self.attempts = families.attempts(r)
        self.call_duration = families.provider_call_duration(r)
        self.tokens = families.tokens(r)
        self.cost = families.cost(r)
        self.waits = families.ratelimit_waits(r)
        self.wait_seconds = families.ratelimit_wait_seconds(r)
        self.fallbacks = families.fallbacks(r)
        self.breaker_transitions = families.breaker_transitions(r)
        self.webhook_deliveries = families.webhook_deliveries(r)
        self.webhook_retries = families.webhook_retries(r)
        self.webhook_duration = families.webhook_duration(r)
        self.repairs = families.reconciler_repairs(r)
        self.cache_lookups = families.cache_lookups(r)
        self.cache_saved = families.cache_saved(r)
        families.process(r)

    # -- the runner's observer (app.jobs.observer.JobObserver) --------------------------
    def claimed(self, claim: Claim) -> None:
        if claim.queue_wait_s is not None:
            wait = max(claim.queue_wait_s, 0.0)
            self.queue_wait.labels(claim.provider, claim.priority).observe(wait)

    def admitted(self, provider: str, admitted: Permit | Wait | TooLarge) -> None:
        if isinstance(admitted, Permit):
            if admitted.waited_s > 0:
                self.waits.labels(provider, "in_slot").inc()
                self.wait_seconds.labels(provider, "in_slot").inc(admitted.waited_s)
        elif isinstance(admitted, Wait):
            self.waits.labels(provider, "set_aside").inc()
            self.wait_seconds.labels(provider, "set_aside").inc(max(admitted.retry_in_s, 0.0))

    def recorded(self, claim: Claim, outcome: Outcome, attempt: AttemptRecord | None) -> None:
        if attempt is not None:
            self._attempt(attempt)
        if isinstance(outcome, Succeeded):
            if outcome.cached_tokens:
                self.tokens.labels(outcome.provider, outcome.model_id, "cached").inc(
                    outcome.cached_tokens
                )
            end = JobEnd(
                "succeeded", outcome.provider, outcome.model_id, claim.priority, claim.created_at
            )
            self.ended(end)
        elif isinstance(outcome, Failed):
            self.ended(
                JobEnd("failed", claim.provider, claim.model_id, claim.priority, claim.created_at)
            )
        elif isinstance(outcome, Requeued):
            error_class = attempt.error_class if attempt is not None else None
            self.fallbacks.labels(claim.provider, outcome.provider, error_class or MODEL_GONE).inc()

    def ended(self, job: JobEnd, count: int = 1) -> None:
        self.jobs_finished.labels(job.status, job.provider, job.model, job.priority).inc(count)
        if job.status != "cancelled":
            age = (datetime.now(UTC) - job.created_at).total_seconds()
            self.job_duration.labels(job.provider, job.priority).observe(max(age, 0.0))

    def _attempt(self, a: AttemptRecord) -> None:
        self.attempts.labels(a.provider, a.model_id, a.status, a.error_class or "").inc()
        if not a.skipped:
            outcome = "succeeded" if a.error_class is None else "failed"
            self.call_duration.labels(a.provider, a.model_id, outcome).observe(a.latency_ms / 1000)
        if a.billed:
            self.tokens.labels(a.provider, a.model_id, "input").inc(a.input_tokens or 0)
            self.tokens.labels(a.provider, a.model_id, "output").inc(a.output_tokens or 0)
            self.cost.labels(a.provider, a.model_id).inc(float(a.cost_usd or 0))

    # -- the other parts of a worker process --------------------------------------------
    def cache_counted(self, count: CacheCount) -> None:
        """``ResponseCache``'s ``tally``: a job served from the cache or released to run (the
        served ones also reach ``ended`` through its ``on_served``)."""
        families.tally(self.cache_lookups, self.cache_saved, count)

    def breaker_moved(self, target: str, was: BreakerState, now: BreakerState) -> None:
        """``CircuitBreakers``' ``on_transition``."""
        self.breaker_transitions.labels(target, was.value, now.value).inc()

    def webhook_tried(self, status: str, number: int, seconds: float) -> None:
        """``Deliverer``'s ``on_try``: the event's status after try ``number``."""
        self.webhook_deliveries.labels(_WEBHOOK_OUTCOMES.get(status, status)).inc()
        if number > 1:
            self.webhook_retries.inc()
        if status != "disabled" or seconds > 0:  # a disabled endpoint's try sends nothing
            self.webhook_duration.observe(seconds)

    def reconciled(self, report: ReconcileReport) -> None:
        for kind, count in (
            ("lease_expired", report.leases_expired),
            ("deadline", report.deadlines),
            ("promoted", report.promoted),
            ("republished", report.republished),
        ):
            if count:
                self.repairs.labels(kind).inc(count)


@cache
def worker_metrics() -> WorkerMetrics:
    """This process's metrics, made on first use (the process serves them, its runner feeds
    them); shared by every ``ProcessResources`` the process builds."""
    return WorkerMetrics()


def serve(settings: Settings, *, port: int | None = None, host: str | None = None) -> int | None:
    """Serve this process's metrics on ``port`` (default ``SWITCHBOARD_METRICS_PORT``; 0: not
    at all), from a thread of its own; returns the port."""
    port = settings.metrics_port if port is None else port
    if not port:
        return None
    server = MetricsServer(worker_metrics().registry, metrics_token(settings))
    return server.start(host or settings.metrics_host, port)
