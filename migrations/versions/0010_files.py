"""files: the OpenAI Files API (uploads in chunks, batch output and error files)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 19:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("batches", sa.Column("output_file_id", sa.Text(), nullable=True))
    op.add_column("batches", sa.Column("error_file_id", sa.Text(), nullable=True))
    op.create_index("ix_batches_tenant_id_id", "batches", ["tenant_id", "id"], unique=False)
    op.create_index(
        "ix_batches_live",
        "batches",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('in_progress', 'cancelling', 'finalizing')"),
    )
    op.create_table(
        "files",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("lines", sa.Integer(), nullable=True),
        sa.Column("batch_id", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_after_s", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name=op.f("fk_files_batch_id_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
    )
    op.create_index("ix_files_tenant_id_id", "files", ["tenant_id", "id"], unique=False)
    op.create_index("ix_files_batch_id", "files", ["batch_id"], unique=False)
    op.create_index(
        "ix_files_expires_at",
        "files",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("expires_at IS NOT NULL"),
    )
    op.create_table(
        "file_chunks",
        sa.Column("file_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["files.id"],
            name=op.f("fk_file_chunks_file_id_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("file_id", "seq", name=op.f("pk_file_chunks")),
    )


def downgrade() -> None:
    op.drop_table("file_chunks")
    op.drop_index(
        "ix_files_expires_at",
        table_name="files",
        postgresql_where=sa.text("expires_at IS NOT NULL"),
    )
    op.drop_index("ix_files_batch_id", table_name="files")
    op.drop_index("ix_files_tenant_id_id", table_name="files")
    op.drop_table("files")
    op.drop_index(
        "ix_batches_live",
        table_name="batches",
        postgresql_where=sa.text("status IN ('in_progress', 'cancelling', 'finalizing')"),
    )
    op.drop_index("ix_batches_tenant_id_id", table_name="batches")
    op.drop_column("batches", "error_file_id")
    op.drop_column("batches", "output_file_id")
