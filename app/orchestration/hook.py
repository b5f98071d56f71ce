"""The runner's side of orchestrations: a step's end carries its orchestration on.

``app.jobs.execution`` asks ``continuation`` whether the outcome it is about to record ends a
step of an orchestration; if so it takes the orchestration's lock first, records the step,
advances the orchestration in the same transaction, and calls ``after_commit`` once that
committed. Advancing runs in a savepoint: should it fail, the step's own outcome is still
recorded and the reconciler's sweep advances the orchestration later.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from app.jobs.claims import Claim
from app.jobs.runtime import Runtime
from app.ledger.record import Failed, Outcome, Succeeded
from app.orchestration.progress import Progress, advance, lock

log = logging.getLogger(__name__)


class Continuation:
    """What the end of one step of orchestration ``orchestration_id`` does to it."""

    def __init__(self, orchestration_id: str) -> None:
        self.orchestration_id = orchestration_id
        self.progress = Progress()

    def lock(self, conn: psycopg.Connection[Any]) -> None:
        """Before the step's row is written: the lock order every writer keeps."""
        lock(conn, self.orchestration_id)

    def advance(self, conn: psycopg.Connection[Any]) -> None:
        """After the step's outcome is written, in the same transaction."""
        self.progress = Progress()
        try:
            with conn.transaction():
                self.progress = advance(conn, self.orchestration_id)
        except psycopg.OperationalError:
            raise  # the connection is gone: the whole record is retried
        except Exception:
            log.exception(
                "orchestration %s not advanced; the reconciler will", self.orchestration_id
            )

    def after_commit(self, rt: Runtime) -> None:
        """Publish what advancing created (the reconciler would, if this fails)."""
        progress = self.progress
        try:
            rt.dispatcher.publish(progress.publish)
        except Exception:
            log.warning(
                "orchestration %s: steps not published; the reconciler will", self.orchestration_id
            )
        if progress.events:
            try:
                rt.publish_events(tuple(progress.events))
            except Exception:
                log.warning(
                    "orchestration %s: its webhook event waits for the sweep", self.orchestration_id
                )
        for end in progress.ended:
            rt.observer.ended(end)


def continuation(claim: Claim, outcome: Outcome) -> Continuation | None:
    """A continuation if ``outcome`` ends a step of an orchestration, else None."""
    if claim.parent_id is None or not isinstance(outcome, Succeeded | Failed):
        return None
    return Continuation(claim.parent_id)
