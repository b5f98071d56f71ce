"""A batch's status, moved by the same statements that move its counters.

    in_progress ──(last job ends)──────────────────────▶ completed
         │  └──(window passed)──▶ finalizing ──(last running job ends)──▶ expired
         └──(cancel)──▶ cancelling ──(last running job ends)──▶ cancelled
    failed: the input did not validate (no job was ever queued)

``validating`` is never seen: input is checked while ``POST /v1/batches`` runs, so the batch
comes back ``in_progress`` or ``failed``. ``finalizing`` means no new request starts (the
window passed) while requests already running finish; a batch whose last request ends after
its window is ``expired`` even without the sweep. Output and error files are rendered from the
ledger when read, so finishing them takes no time: ``finalizing_at`` of a completed batch is its
``completed_at``.

Every statement that ends jobs of a batch (app/ledger/record.py for one job, app/batches/stop.py
for many) sets the batch's counters, status and timestamps in the same UPDATE with the SQL
below, so they can never disagree.
"""

from __future__ import annotations

from app.jobs.states import BatchStatus

ENDED = {BatchStatus.COMPLETED, BatchStatus.EXPIRED, BatchStatus.CANCELLED}
# Statuses whose batch has output and error files to show.
ENDED_VALUES = tuple(sorted(s.value for s in ENDED))
# What a caller's intent makes of a batch still running; statuses it does not list stay.
Intent = tuple[tuple[str, str], ...]
CANCEL: Intent = (("in_progress", "cancelling"),)
EXPIRE: Intent = (("in_progress", "finalizing"),)


def status_assignments(done: str, intent: Intent = ()) -> str:
    """``SET`` assignments for ``batches``: status and its timestamps, after ``done`` more of
    its jobs ended in this statement (a SQL expression) and what ``intent`` asks."""
    status = "batches.status"
    if intent:
        whens = " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in intent)
        status = f"(CASE batches.status {whens} ELSE batches.status END)"
    remaining = f"batches.succeeded + batches.failed + batches.cancelled + {done} < batches.total"
    new = f"""(CASE WHEN {remaining} THEN {status}
        WHEN {status} IN ('in_progress', 'finalizing') AND batches.expires_at <= now()
            THEN 'expired'
        WHEN {status} IN ('in_progress', 'finalizing') THEN 'completed'
        WHEN {status} = 'cancelling' THEN 'cancelled'
        ELSE {status} END)"""

    def stamp(column: str, *statuses: str) -> str:
        listed = ", ".join(f"'{s}'" for s in statuses)
        return (
            f"{column} = coalesce(batches.{column}, CASE WHEN {new} IN ({listed}) THEN now() END)"
        )

    return ",\n        ".join(
        [
            f"status = {new}",
            stamp("finalizing_at", "finalizing", "completed", "expired"),
            stamp("completed_at", "completed"),
            stamp("expired_at", "expired"),
            stamp("cancelling_at", "cancelling", "cancelled"),
            stamp("cancelled_at", "cancelled"),
        ]
    )


# In ``RETURNING``: this statement ended the batch (only it sees its end stamped with its own
# ``now()``); its webhook event goes with it.
ENDED_NOW = """(batches.completed_at = now() OR batches.expired_at = now()
        OR batches.cancelled_at = now())"""
