"""Worker lifecycle: per-process resources and the promoter thread."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init, worker_ready, worker_shutdown

from workers.promoter import Promoter
from workers.resources import reset_after_fork, resources

_promoter: Promoter | None = None


@worker_process_init.connect
def _fresh_resources(**_: Any) -> None:
    reset_after_fork()


@worker_ready.connect
def _start(**_: Any) -> None:
    global _promoter
    resources()  # fail fast, before taking messages, if Postgres or Redis is unreachable
    _promoter = Promoter()
    _promoter.start()


@worker_shutdown.connect
def _stop(**_: Any) -> None:
    if _promoter is not None:
        _promoter.stop()
