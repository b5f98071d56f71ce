"""Webhook tasks: deliver one outbox event; sweep the outbox for due and stranded events."""

from __future__ import annotations

import logging
import time

from celery.exceptions import Reject

from app.webhooks.outbox import DELIVER_TASK, SWEEP_TASK, sweep
from workers.celery_app import celery_app
from workers.resources import resources
from workers.tasks import PAUSE_BEFORE_REQUEUE_S, UNAVAILABLE

log = logging.getLogger(__name__)


@celery_app.task(name=DELIVER_TASK, ignore_result=True)
def deliver_webhook(event_id: str) -> None:
    try:
        resources().webhooks.deliver(event_id)
    except UNAVAILABLE as exc:
        # The event stays pending (its lease lapses): the sweep will publish it again.
        log.warning("webhook %s: %s unavailable", event_id, type(exc).__name__)
        time.sleep(PAUSE_BEFORE_REQUEUE_S)
        raise Reject(reason=type(exc).__name__, requeue=False) from exc


@celery_app.task(name=SWEEP_TASK, ignore_result=True)
def sweep_webhooks() -> None:
    res = resources()
    sweep(res.engine, res.webhook_events, grace_s=res.settings.stale_queued_s)
