"""Worker lifecycle: per-process resources and the promoter thread."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_process_init, worker_ready, worker_shutdown

from workers.promoter import Promoter
from workers.resources import reset_after_fork, resources

log = logging.getLogger(__name__)
_promoter: Promoter | None = None


@worker_process_init.connect
def _fresh_resources(**_: Any) -> None:
    reset_after_fork()


@worker_ready.connect
def _start(**_: Any) -> None:
    global _promoter
    # The promoter starts whatever happens next: its loop retries until the services answer.
    _promoter = Promoter()
    _promoter.start()
    try:
        resources()  # connect now rather than on the first message
    except Exception:
        log.exception("Postgres or Redis unreachable at start; tasks will retry")


@worker_shutdown.connect
def _stop(**_: Any) -> None:
    if _promoter is not None:
        _promoter.stop()
