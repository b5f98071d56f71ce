"""Names shared across processes: queue names, Redis key prefixes, limits.

Every Redis key Switchboard writes starts with ``REDIS_PREFIX`` so that it never collides with
the broker's own keys (kombu keeps queues under their bare names and ``unacked*``).
"""

from __future__ import annotations

from enum import StrEnum


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


# Workers of a provider consume its queues in this order.
PRIORITY_ORDER: tuple[Priority, ...] = (Priority.HIGH, Priority.NORMAL, Priority.LOW)

# Owns what was submitted before tenants existed, and what the admin key submits.
DEFAULT_TENANT = "default"

RUN_JOB_TASK = "switchboard.run_job"
RECONCILE_TASK = "switchboard.reconcile"

REDIS_PREFIX = "sb:"
DELAYED_JOBS_KEY = REDIS_PREFIX + "delayed"  # zset: job id -> not-before (unix s)
LIVE_MESSAGES_KEY = REDIS_PREFIX + "live"  # zset: job id -> time its message was published
RECONCILE_LOCK_KEY = REDIS_PREFIX + "reconcile:lock"
RATE_LIMIT_PREFIX = REDIS_PREFIX + "rl:"
BREAKER_PREFIX = REDIS_PREFIX + "cb:"
# stream per streaming job: its attempts' deltas, worker -> API (app/relay). Each write
# renews the TTL, so a stream outlives its job by this much and no more.
STREAM_PREFIX = REDIS_PREFIX + "stream:"
STREAM_TTL_S = 300

MAX_BATCH_REQUESTS = 50_000
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
MAX_CUSTOM_ID_CHARS = 256
MAX_CACHE_TTL_S = 30 * 24 * 3600  # the longest a cached answer may be reused


def queue_name(provider: str, priority: Priority | str) -> str:
    """The Celery queue a job for ``provider`` at ``priority`` is published to."""
    return f"{provider}.{Priority(priority).value}"


def provider_queues(provider: str) -> list[str]:
    """A provider's queues, highest priority first (the order its workers consume them)."""
    return [queue_name(provider, p) for p in PRIORITY_ORDER]
