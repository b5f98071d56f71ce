"""Index failed jobs by finished_at, so the latest failures read only failed jobs.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_failed_finished_at",
        "jobs",
        ["finished_at"],
        unique=False,
        postgresql_where=sa.text("status = 'failed'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_jobs_failed_finished_at",
        table_name="jobs",
        postgresql_where=sa.text("status = 'failed'"),
    )
