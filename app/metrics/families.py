"""Every metric Switchboard exports, in one place: name, meaning, labels and buckets.

Labels are bounded by what the operator configures — providers, models, priorities, job
statuses, error classes, route templates, breaker targets — never by what callers send: no
tenant, job, batch or key id, no raw path. The state gauges are not here but in
``app.metrics.state``, which computes them when the API is scraped.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)

from app import __version__
from app.cache.tally import HIT, CacheCount

# No ``*_created`` series: they would double the series of every counter and histogram, and
# rate() and increase() never read them.
disable_created_metrics()  # type: ignore[no-untyped-call]

NAMESPACE = "switchboard"

# Provider calls: milliseconds (a local model, a zero-latency simulator) to minutes.
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
# Submission to end: an interactive job's second to a 50,000-job batch's day.
JOB_BUCKETS = (
    *(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    *(300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600),
)
# Queued to claimed: interactive jobs should see the first buckets, a batch backlog the last.
QUEUE_BUCKETS = (
    *(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    *(30, 60, 300, 900, 3600, 4 * 3600),
)
# API requests: most answer in milliseconds; chat completions wait for their job.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
WEBHOOK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

MODEL = ("provider", "model")


def jobs_finished(registry: CollectorRegistry) -> Counter:
    return Counter(
        "switchboard_jobs_finished",
        "Jobs that reached a terminal status (succeeded, failed, cancelled), under the model "
        "that served them or the last one tried.",
        ("status", "provider", "model", "priority"),
        registry=registry,
    )


def job_duration(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "switchboard_job_duration_seconds",
        "Submission to terminal status, for jobs that succeeded or failed.",
        ("provider", "priority"),
        buckets=JOB_BUCKETS,
        registry=registry,
    )


def queue_wait(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "switchboard_queue_wait_seconds",
        "Queued to claimed by a worker, on the provider's queue of the job's priority "
        "(counted again after each fallback, retry wait or lease expiry).",
        ("provider", "priority"),
        buckets=QUEUE_BUCKETS,
        registry=registry,
    )


def attempts(registry: CollectorRegistry) -> Counter:
    return Counter(
        "switchboard_attempts",
        "Attempts by outcome (succeeded, failed, skipped: no call made) and error class.",
        (*MODEL, "outcome", "error_class"),
        registry=registry,
    )


def provider_call_duration(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "switchboard_provider_call_duration_seconds",
        "One provider call, request to parsed answer or error.",
        (*MODEL, "outcome"),
        buckets=CALL_BUCKETS,
        registry=registry,
    )


def tokens(registry: CollectorRegistry) -> Counter:
    return Counter(
        "switchboard_tokens",
        "Tokens the providers billed: input, output, and the cached part of the input.",
        (*MODEL, "kind"),
        registry=registry,
    )


def cost(registry: CollectorRegistry) -> Counter:
    return Counter(
        "switchboard_cost_usd",
        "What the attempts cost at the registry's prices, in US dollars (the ledger has the "
        "exact decimals).",
        MODEL,
        registry=registry,
    )


def cache_lookups(registry: CollectorRegistry) -> Counter:
    return Counter(
        "switchboard_cache_lookups",
        "Jobs the response cache took part in, by outcome: hit (served from the cache, by "
        "the exact or semantic lookup that found the answer) or miss (it ran, by the mode it "
        "asked for); under the model that answered or that it was queued for.",
        ("mode", "outcome", *MODEL),
        registry=registry,
    )


def cache_saved(registry: CollectorRegistry) -> Counter:
    return Counter(
        "switchboard_cache_saved_usd",
        "What the answers served from the cache cost their source jobs, in US dollars: what "
        "the hits saved (the ledger has the exact decimals).",
        ("mode", *MODEL),
        registry=registry,
    )


def ratelimit_waits(registry: CollectorRegistry) -> Counter:
    return Counter(
        "switchboard_ratelimit_waits",
        "Calls that waited for rate-limit tokens: in_slot (slept in the worker slot), "
        "set_aside (none soon: the slot was freed and the job set aside).",
        ("provider", "kind"),
        registry=registry,
    )


def ratelimit_wait_seconds(registry: CollectorRegistry) -> Counter:
    return Counter(
        "switchboard_ratelimit_wait_seconds",
        "Seconds slept in the slot (in_slot) or set aside for (set_aside) rate-limit tokens.",
        ("provider", "kind"),
        registry=registry,
    )


def fallbacks(registry: CollectorRegistry) -> Counter:
    return Counter(
        "switchboard_fallbacks",
        "Jobs moved on to the next model of their chain, by the error class that moved them.",
        ("from_provider", "to_provider", "error_class"),
        registry=registry,
    )


def breaker_transitions(registry: CollectorRegistry) -> Counter:
    return Counter(
        "switchboard_breaker_transitions",
        "Circuit breaker changes of state (closed, open, half_open), per target.",
        ("target", "from_state", "to_state"),
        registry=registry,
    )


def webhook_deliveries(registry: CollectorRegistry) -> Counter:
    return Counter(
        "switchboard_webhook_deliveries",
        "Webhook delivery tries by outcome: delivered, retry (failed, tried again later), "
        "failed (out of tries), disabled (the endpoint is off or answered 410).",
        ("outcome",),
        registry=registry,
    )


def webhook_retries(registry: CollectorRegistry) -> Counter:
    return Counter(
        "switchboard_webhook_retries",
        "Webhook delivery tries after an event's first.",
        registry=registry,
    )


def webhook_duration(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "switchboard_webhook_delivery_duration_seconds",
        "One webhook delivery try, request to the receiver's answer.",
        buckets=WEBHOOK_BUCKETS,
        registry=registry,
    )


def reconciler_repairs(registry: CollectorRegistry) -> Counter:
    return Counter(
        "switchboard_reconciler_repairs",
        "What the reconciler repaired: lease_expired (requeued), deadline (failed), "
        "promoted (waiting job whose timer was lost), republished (queued job whose message "
        "was lost).",
        ("kind",),
        registry=registry,
    )


def http_requests(registry: CollectorRegistry) -> Counter:
    return Counter(
        "switchboard_http_requests",
        "API requests by method, route template and status.",
        ("method", "route", "status"),
        registry=registry,
    )


def http_duration(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "switchboard_http_request_duration_seconds",
        "API request to the last byte of its answer (for a stream, its whole length).",
        ("method", "route"),
        buckets=HTTP_BUCKETS,
        registry=registry,
    )


def tally(lookups: Counter, saved: Counter, count: CacheCount) -> None:
    """One cache outcome into ``cache_lookups`` and ``cache_saved``."""
    lookups.labels(count.mode, count.outcome, count.provider, count.model).inc()
    if count.outcome == HIT:
        saved.labels(count.mode, count.provider, count.model).inc(float(count.saved_usd))


def process(registry: CollectorRegistry) -> None:
    """The process's own CPU, memory and file descriptors, and the version it runs."""
    ProcessCollector(namespace=NAMESPACE, registry=registry)
    info = Gauge(
        "switchboard_build_info",
        "Always 1: the Switchboard version this process runs.",
        ("version",),
        registry=registry,
    )
    info.labels(__version__).set(1)
