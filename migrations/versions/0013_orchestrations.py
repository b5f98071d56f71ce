"""orchestrations: chains and ensembles, and the link from their steps (jobs) to them

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    jsonb = postgresql.JSONB(astext_type=sa.Text())
    op.create_table(
        "orchestrations",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), server_default="default", nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("priority", sa.Text(), nullable=False),
        sa.Column("spec", jsonb, nullable=False),
        sa.Column("result", jsonb, nullable=True),
        sa.Column("synthesis", jsonb, nullable=True),
        sa.Column("error_class", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("output_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("cost_usd", sa.Numeric(24, 12), server_default=sa.text("0"), nullable=False),
        sa.Column("pending_holds", jsonb, server_default="{}", nullable=False),
        sa.Column("metadata", jsonb, server_default="{}", nullable=False),
        sa.Column("project", sa.Text(), nullable=True),
        sa.Column("custom_id", sa.Text(), nullable=True),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("notify", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("request_hash", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orchestrations")),
    )
    op.create_index(
        "ix_orchestrations_tenant_id_id", "orchestrations", ["tenant_id", "id"], unique=False
    )
    op.create_index(
        "ix_orchestrations_running",
        "orchestrations",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_index(
        "uq_orchestrations_tenant_idempotency_key",
        "orchestrations",
        ["tenant_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.add_column("jobs", sa.Column("parent_id", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("step_index", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("step_role", sa.Text(), nullable=True))
    op.create_foreign_key(
        op.f("fk_jobs_parent_id_orchestrations"),
        "jobs",
        "orchestrations",
        ["parent_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index(
        "ix_jobs_parent_id_step_index",
        "jobs",
        ["parent_id", "step_index"],
        unique=False,
        postgresql_where=sa.text("parent_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_jobs_parent_id_step_index",
        table_name="jobs",
        postgresql_where=sa.text("parent_id IS NOT NULL"),
    )
    op.drop_constraint(op.f("fk_jobs_parent_id_orchestrations"), "jobs", type_="foreignkey")
    op.drop_column("jobs", "step_role")
    op.drop_column("jobs", "step_index")
    op.drop_column("jobs", "parent_id")
    op.drop_table("orchestrations")
