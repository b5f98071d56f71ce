"""response cache: entries, holds, the jobs' cache columns and their rollup

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# pgvector where the server ships it (the embedded pgserver and the compose image do) and this
# role may create it; without it the semantic cache uses its in-process index. Vectors are
# stored as real[] either way, which pgvector casts to its own type in the lookup.
_PGVECTOR = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS vector;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pgvector is available but this role may not create it: the '
                'semantic cache uses its in-process index';
        END;
    END IF;
END $$;
"""


def upgrade() -> None:
    op.execute(_PGVECTOR)
    op.add_column("jobs", sa.Column("cache", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("cache_source_job_id", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("cache_similarity", postgresql.REAL(), nullable=True))
    op.add_column(
        "jobs", sa.Column("cost_saved_usd", sa.Numeric(precision=24, scale=12), nullable=True)
    )

    # Rollups keep the cache outcome as a key and what hits saved as a measure.
    op.add_column("job_rollups", sa.Column("cache", sa.Text(), server_default="", nullable=False))
    op.add_column(
        "job_rollups",
        sa.Column(
            "cost_saved_usd",
            sa.Numeric(precision=24, scale=12),
            server_default=sa.text("0"),
            nullable=False,
        ),
    )
    op.drop_constraint("pk_job_rollups", "job_rollups", type_="primary")
    op.create_primary_key(
        "pk_job_rollups",
        "job_rollups",
        [
            "span",
            "starts_at",
            "tenant_id",
            "project",
            "provider",
            "model",
            "priority",
            "status",
            "error_class",
            "cache",
        ],
    )

    op.execute("CREATE SEQUENCE cache_entries_version_seq")
    op.create_table(
        "cache_entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("priority", sa.Text(), nullable=False),
        sa.Column("requested", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("embedding_model", sa.Text(), nullable=True),
        sa.Column("embedding", postgresql.ARRAY(postgresql.REAL()), nullable=True),
        sa.Column(
            "version",
            sa.BigInteger(),
            server_default=sa.text("nextval('cache_entries_version_seq')"),
            nullable=False,
        ),
        sa.Column("hits", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_hit_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_cache_entries_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cache_entries")),
        sa.UniqueConstraint("tenant_id", "key", name=op.f("uq_cache_entries_tenant_id_key")),
    )
    op.execute("ALTER SEQUENCE cache_entries_version_seq OWNED BY cache_entries.version")
    op.create_index(
        "ix_cache_entries_semantic",
        "cache_entries",
        ["tenant_id", "scope", "embedding_model", "version"],
        postgresql_where=sa.text("embedding IS NOT NULL"),
    )
    op.create_index(
        "ix_cache_entries_expires_at",
        "cache_entries",
        ["expires_at"],
        postgresql_where=sa.text("state = 'ready'"),
    )
    op.create_index("ix_cache_entries_job_id", "cache_entries", ["job_id"])
    op.create_index(
        "ix_cache_entries_pending",
        "cache_entries",
        ["created_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index("ix_cache_entries_tenant_id_model", "cache_entries", ["tenant_id", "model"])

    op.create_table(
        "cache_holds",
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("holder_id", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("similarity", postgresql.REAL(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_cache_holds_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_cache_holds")),
    )
    op.create_index("ix_cache_holds_holder_id", "cache_holds", ["holder_id"])


def downgrade() -> None:
    op.drop_table("cache_holds")
    op.drop_table("cache_entries")  # its version sequence goes with it
    op.drop_constraint("pk_job_rollups", "job_rollups", type_="primary")
    op.execute("DELETE FROM job_rollups WHERE cache <> ''")  # would collide without the key
    op.create_primary_key(
        "pk_job_rollups",
        "job_rollups",
        [
            "span",
            "starts_at",
            "tenant_id",
            "project",
            "provider",
            "model",
            "priority",
            "status",
            "error_class",
        ],
    )
    op.drop_column("job_rollups", "cost_saved_usd")
    op.drop_column("job_rollups", "cache")
    for column in ("cost_saved_usd", "cache_similarity", "cache_source_job_id", "cache"):
        op.drop_column("jobs", column)
