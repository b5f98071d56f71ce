"""The webhook event an orchestration's end sends, written to the outbox in that transaction.

Like a job's (``app/ledger/record.py``): ``job.succeeded`` or ``job.failed`` to the
orchestration's ``webhook_url``, else its tenant's default, with ``kind`` saying which it
is; ``app/webhooks/outbox.py`` delivers it (signed, retried) like any other event.
"""

from __future__ import annotations

from typing import Any

import psycopg

_END_EVENT = """INSERT INTO webhook_events (id, tenant_id, type, url, job_id, payload)
    SELECT 'msg_' || replace(CAST(gen_random_uuid() AS text), '-', ''), o.tenant_id,
        'job.' || o.status, coalesce(o.webhook_url, t.webhook_url), o.id,
        jsonb_build_object('type', 'job.' || o.status,
            'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'data', jsonb_build_object('id', o.id, 'status', o.status, 'kind', o.kind,
                'custom_id', o.custom_id, 'cost_usd', CAST(trim_scale(o.cost_usd) AS text))
            || CASE WHEN o.error_class IS NULL THEN '{}'::jsonb ELSE jsonb_build_object(
                'error', jsonb_build_object('class', o.error_class,
                    'message', o.error_message)) END)
    FROM orchestrations o LEFT JOIN tenants t ON t.id = o.tenant_id
    WHERE o.id = %s AND o.status = %s AND coalesce(o.webhook_url, t.webhook_url) IS NOT NULL
    RETURNING id"""


def end_event(conn: psycopg.Connection[Any], orchestration_id: str, status: str) -> str | None:
    """Write the end event of an orchestration that just ended; its id, or None (no URL)."""
    row = conn.execute(_END_EVENT, (orchestration_id, status)).fetchone()
    return None if row is None else str(row[0])
