"""A worker-process thread that puts jobs whose not-before time has come back on their queue."""

from __future__ import annotations

import logging
import threading
import time

from app.db.raw import autocommit
from app.jobs.delayed import promote
from workers.resources import resources

log = logging.getLogger(__name__)


class Promoter(threading.Thread):
    """Every ``interval_s``, moves due ``waiting`` jobs to ``queued`` and publishes them.

    Several workers may each run one: popping due ids is atomic in Redis, and promoting is a
    conditional UPDATE, so a job is published once.
    """

    def __init__(self, interval_s: float = 0.1) -> None:
        super().__init__(name="switchboard-promoter", daemon=True)
        self.interval_s = interval_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("promoting delayed jobs failed; will try again")
                self._stop_event.wait(1.0)
            self._stop_event.wait(self.interval_s)

    def tick(self) -> int:
        rt = resources().runtime
        due = rt.delayed.pop_due(time.time())
        if not due:
            return 0
        with autocommit(rt.engine) as conn:
            refs = promote(conn, due)
        rt.dispatcher.publish(refs)
        return len(refs)

    def stop(self) -> None:
        self._stop_event.set()
