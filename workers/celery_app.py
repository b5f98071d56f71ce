"""The Celery app (fixed handle ``workers.celery_app:celery_app``) and its settings.

Queues are ``<provider>.<priority>``; a provider's workers consume its three queues highest
priority first (kombu's ``priority`` queue order: every poll asks for ``high`` first), one
message per slot (prefetch 1), acknowledged only after the task ran (``acks_late``) and
re-delivered if the worker process dies mid-task. Postgres, not Celery, holds job state: the
messages carry only job ids and results are never stored in a Celery backend.
"""

from __future__ import annotations

from celery import Celery

from app.config import Settings, get_settings
from app.constants import RECONCILE_TASK
from app.embedded import resolve_urls
from app.ledger.rollup import ROLLUP_INTERVAL_S, ROLLUP_TASK
from app.webhooks.outbox import SWEEP_TASK

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
MAINTENANCE_QUEUE = "switchboard.maintenance"


def broker_url(settings: Settings) -> str:
    urls = resolve_urls(settings.database_url, settings.redis_url, settings.data_dir)
    if urls is not None:
        return urls.redis_url
    return settings.redis_url or DEFAULT_BROKER


def create_celery_app(broker: str, settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("switchboard", broker=broker, include=["workers.tasks", "workers.webhook_tasks"])
    if broker.startswith("redis://"):
        app.conf.broker_transport = "workers.broker:Transport"
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        task_create_missing_queues=True,
        task_default_queue=MAINTENANCE_QUEUE,
        broker_transport_options={
            "queue_order_strategy": "priority",
            # A message a dead worker had taken but not claimed comes back after this. Safe to
            # keep short: a redelivered message for a running or finished job does nothing.
            "visibility_timeout": settings.visibility_timeout_s,
        },
        broker_connection_retry_on_startup=True,
        broker_pool_limit=64,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_disable_rate_limits=True,  # rate limits are ours (app.ratelimit), not Celery's
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        enable_utc=True,
        beat_schedule={
            "reconcile": {
                "task": RECONCILE_TASK,
                "schedule": settings.reconcile_interval_s,
                "options": {"queue": MAINTENANCE_QUEUE, "expires": settings.reconcile_interval_s},
            },
            "rollup-reports": {
                "task": ROLLUP_TASK,
                "schedule": ROLLUP_INTERVAL_S,
                "options": {"queue": MAINTENANCE_QUEUE, "expires": ROLLUP_INTERVAL_S},
            },
            "webhook-sweep": {
                "task": SWEEP_TASK,
                "schedule": settings.webhook_sweep_interval_s,
                "options": {
                    "queue": MAINTENANCE_QUEUE,
                    "expires": settings.webhook_sweep_interval_s,
                },
            },
        },
    )
    return app


celery_app = create_celery_app(broker_url(get_settings()))
