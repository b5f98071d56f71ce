"""Every table Switchboard keeps in Postgres, the source of truth for each job's lifecycle."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REAL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Money: USD to 12 places: tokens × a price with 6 decimals per million is always exact.
Money = Numeric(24, 12)
Price = Numeric(12, 6)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB,
        Decimal: Money,
    }


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class ProviderRow(Base):
    """A provider endpoint: wire format, base URL and default rate limits for one key."""

    __tablename__ = "providers"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    display_name: Mapped[str] = mapped_column(Text)
    wire_format: Mapped[str] = mapped_column(Text)
    base_url: Mapped[str] = mapped_column(Text)
    api_key_env: Mapped[str | None] = mapped_column(Text)
    rpm: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(Integer)
    itpm: Mapped[int | None] = mapped_column(Integer)
    otpm: Mapped[int | None] = mapped_column(Integer)
    burst_s: Mapped[float] = mapped_column(Float, server_default=text("60"))
    simulated: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # "catalog" rows are re-synced from catalog.toml; "api" rows are the operator's own.
    source: Mapped[str] = mapped_column(Text, server_default="catalog")
    # Columns an operator changed through the API: a catalog re-sync leaves them alone.
    overrides: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class ModelRow(Base):
    """A model callers can name: where it is served, what it can do and what it costs."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    provider: Mapped[str] = mapped_column(ForeignKey("providers.name", ondelete="CASCADE"))
    upstream: Mapped[str] = mapped_column(Text)
    context_window: Mapped[int] = mapped_column(Integer)
    max_output_tokens: Mapped[int] = mapped_column(Integer)
    input_per_mtok: Mapped[Decimal] = mapped_column(Price)
    output_per_mtok: Mapped[Decimal] = mapped_column(Price)
    cached_input_per_mtok: Mapped[Decimal | None] = mapped_column(Price)
    capabilities: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    aliases: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    rpm: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(Integer)
    deprecated: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # "catalog", "api" (registered by an operator) or "discovered" (from the provider's list).
    source: Mapped[str] = mapped_column(Text, server_default="catalog")
    overrides: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class ApiKeyRow(Base):
    """A provider API key: stored encrypted, shown only by its fingerprint."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    provider: Mapped[str] = mapped_column(ForeignKey("providers.name", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(Text)
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(Text)
    last_four: Mapped[str | None] = mapped_column(Text)  # all that is kept of the plaintext
    rpm: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(Integer)
    itpm: Mapped[int | None] = mapped_column(Integer)
    otpm: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    __table_args__ = (UniqueConstraint("provider", "label"),)


class BatchRow(Base):
    """A batch of jobs, shaped like OpenAI's batch object; counters move with its jobs."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(Text, server_default="default")
    status: Mapped[str] = mapped_column(Text)
    endpoint: Mapped[str] = mapped_column(Text)
    completion_window: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    input_file_id: Mapped[str | None] = mapped_column(Text)
    errors: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    project: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    request_hash: Mapped[str | None] = mapped_column(Text)
    total: Mapped[int] = mapped_column(Integer)
    succeeded: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    failed: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    cancelled: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    input_tokens: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    output_tokens: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    cost_usd: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    created_at: Mapped[datetime] = _created()
    in_progress_at: Mapped[datetime | None]
    finalizing_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]
    cancelling_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    # Its output and error files (app/files): named when the batch is submitted, shown once
    # it has ended with lines for them.
    output_file_id: Mapped[str | None] = mapped_column(Text)
    error_file_id: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_batches_tenant_id_id", "tenant_id", "id"),
        # The reconciler's scan for batches past their window or stopping: only live ones.
        Index(
            "ix_batches_live",
            "expires_at",
            postgresql_where=text("status IN ('in_progress', 'cancelling', 'finalizing')"),
        ),
        Index(
            "uq_batches_tenant_idempotency_key",
            "tenant_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )


class FileRow(Base):
    """A file of the OpenAI Files API: an uploaded batch input (its bytes in ``file_chunks``),
    or a batch's output or error file, rendered from its jobs when read (app/files)."""

    __tablename__ = "files"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(Text)  # batch | batch_output
    kind: Mapped[str] = mapped_column(Text)  # upload | output | error
    filename: Mapped[str] = mapped_column(Text)
    bytes: Mapped[int | None] = mapped_column(BigInteger)  # outputs: once first rendered
    lines: Mapped[int | None] = mapped_column(Integer)  # uploads: non-blank lines
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime | None]  # uploads; outputs count from the batch's end
    expires_after_s: Mapped[int | None] = mapped_column(Integer)  # outputs
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        Index("ix_files_tenant_id_id", "tenant_id", "id"),
        Index("ix_files_batch_id", "batch_id"),
        Index(
            "ix_files_expires_at",
            "expires_at",
            postgresql_where=text("expires_at IS NOT NULL"),
        ),
    )


class FileChunkRow(Base):
    """One piece of an uploaded file, in order: a 200 MB upload is never one value."""

    __tablename__ = "file_chunks"

    file_id: Mapped[str] = mapped_column(
        ForeignKey("files.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class JobRow(Base):
    """One request's whole lifecycle: what was asked, where it ran, what it cost."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(Text, server_default="default")
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    custom_id: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    request_hash: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text, server_default="chat")
    status: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(Text)
    request: Mapped[dict[str, Any]] = mapped_column(JSONB)
    models: Mapped[list[str]] = mapped_column(ARRAY(Text))
    chain_index: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    provider: Mapped[str] = mapped_column(Text)  # provider of the current target: its queue
    served_model: Mapped[str | None] = mapped_column(Text)
    served_provider: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    cached_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    attempt_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    claim_token: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    error_class: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    webhook_url: Mapped[str | None] = mapped_column(Text)
    # A webhook (the job's, its batch's or its tenant's default) applied when it was submitted:
    # only then does its terminal statement carry the outbox inserts (app/ledger/record.py).
    notify: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    project: Mapped[str | None] = mapped_column(Text)
    # How the model chain was chosen (policy, strategy, reason, estimates); None: named models.
    routing: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    # Budget reservations this job holds until it ends: [{budget_id, window, usd}].
    budget_holds: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB(none_as_null=True))
    # The response cache (app/cache): "<mode>:hit" (served from the cache by the exact or
    # semantic lookup: no provider call, cost 0) or "<mode>:miss" (it ran); None: not consulted.
    cache: Mapped[str | None] = mapped_column(Text)
    cache_source_job_id: Mapped[str | None] = mapped_column(Text)  # a hit: whose answer it is
    cache_similarity: Mapped[float | None] = mapped_column(REAL)  # a semantic hit's cosine
    cost_saved_usd: Mapped[Decimal | None] = mapped_column(Money)  # a hit: what its source cost
    # A step of a chain or a branch (or the judge) of an ensemble: its orchestration, its
    # position there and its role (app/orchestration). None for a job of its own.
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("orchestrations.id", ondelete="CASCADE")
    )
    step_index: Mapped[int | None] = mapped_column(Integer)
    step_role: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    queued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    not_before: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_jobs_batch_id_custom_id", "batch_id", "custom_id"),
        Index(
            "uq_jobs_tenant_idempotency_key",
            "tenant_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        # The reconciler's scans: only live jobs, which are few compared with finished ones.
        Index(
            "ix_jobs_live",
            "status",
            "queued_at",
            postgresql_where=text("status IN ('queued', 'running', 'waiting')"),
        ),
        Index("ix_jobs_tenant_id_created_at", "tenant_id", "created_at"),
        # An orchestration's steps, read whenever one of them ends.
        Index(
            "ix_jobs_parent_id_step_index",
            "parent_id",
            "step_index",
            postgresql_where=text("parent_id IS NOT NULL"),
        ),
    )


class OrchestrationRow(Base):
    """A chain or an ensemble: jobs of its own (its steps) run and combined into one answer.

    It never sits on a queue; its steps do. Its tokens and cost are the sum of its steps'
    (refreshed whenever one ends), so reports that add up ``jobs`` count every call once."""

    __tablename__ = "orchestrations"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(Text, server_default="default")
    kind: Mapped[str] = mapped_column(Text)  # chain | ensemble
    status: Mapped[str] = mapped_column(Text)  # running | succeeded | failed | cancelled
    priority: Mapped[str] = mapped_column(Text)
    # What runs: the steps (chain) or branches and synthesizer (ensemble), each step with the
    # models planned for it at submission (app/orchestration/plans.py).
    spec: Mapped[dict[str, Any]] = mapped_column(JSONB)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    # How the synthesizer decided (votes, winner, judge), or which chain steps were skipped.
    synthesis: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    error_class: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    output_tokens: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    cost_usd: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    # Budget reservations taken at submission for steps not created yet, by step index; a
    # step takes its own when it is created, and what is left is released at the end.
    pending_holds: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    project: Mapped[str | None] = mapped_column(Text)
    custom_id: Mapped[str | None] = mapped_column(Text)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    notify: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    request_hash: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_orchestrations_tenant_id_id", "tenant_id", "id"),
        # The reconciler's sweep: only those still running.
        Index(
            "ix_orchestrations_running",
            "created_at",
            postgresql_where=text("status = 'running'"),
        ),
        Index(
            "uq_orchestrations_tenant_idempotency_key",
            "tenant_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )


class AttemptRow(Base):
    """One call to one provider for one job, and what was decided after it."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)  # succeeded | failed | skipped (breaker open)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    latency_ms: Mapped[int] = mapped_column(Integer)
    http_status: Mapped[int | None] = mapped_column(Integer)
    error_class: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    retry_after_s: Mapped[float | None] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(Text)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[Decimal | None] = mapped_column(Money)

    __table_args__ = (
        UniqueConstraint("job_id", "number"),
        # A job is paid for at most once, whatever the redeliveries.
        Index(
            "uq_attempts_one_success_per_job",
            "job_id",
            unique=True,
            postgresql_where=text("status = 'succeeded'"),
        ),
        # Live performance reads the last few minutes of attempts, per model.
        Index("ix_attempts_finished_at", "finished_at"),
        # A key's usage and last use, read from the ledger (``app.registry.key_usage``).
        # Covering, so a window's sums are an index-only scan (measured: 6 ms for 20k rows).
        Index(
            "ix_attempts_key_id_started_at",
            "key_id",
            "started_at",
            postgresql_include=["status", "input_tokens", "output_tokens", "cost_usd"],
            postgresql_where=text("key_id IS NOT NULL"),
        ),
    )


class EmbeddingRow(Base):
    """An embedding job's vectors: ``count`` × ``dimensions`` little-endian float32, row-major
    in one value (a 2,048 × 3,072 job is 25 MB here, against ~120 MB as a JSONB of floats)."""

    __tablename__ = "embeddings"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    dimensions: Mapped[int] = mapped_column(Integer)
    vectors: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created()


class CacheEntryRow(Base):
    """One reusable answer of the response cache (app/cache), per tenant and request
    fingerprint: ``ready`` (the answer of ``job_id``, until ``expires_at``), or ``pending``
    (``job_id`` is producing it: identical requests wait for it instead of running)."""

    __tablename__ = "cache_entries"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(Text)  # the exact fingerprint (app/cache/fingerprint.py)
    kind: Mapped[str] = mapped_column(Text)  # chat | embedding
    state: Mapped[str] = mapped_column(Text)  # pending | ready
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    priority: Mapped[str] = mapped_column(Text)  # of job_id: who may wait for it
    requested: Mapped[str] = mapped_column(Text)  # the model as asked: "m", "policy:p", ...
    model: Mapped[str | None] = mapped_column(Text)  # ready: the model that answered
    # The semantic partition (the request but its last user message) and that message's
    # embedding (unit length), for entries of semantic requests.
    scope: Mapped[str | None] = mapped_column(Text)
    embedding_model: Mapped[str | None] = mapped_column(Text)
    embedding: Mapped[list[float] | None] = mapped_column(ARRAY(REAL))
    # Bumped on every change: the in-process semantic index reads only what changed.
    version: Mapped[int] = mapped_column(
        BigInteger, server_default=text("nextval('cache_entries_version_seq')")
    )
    hits: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = _created()
    ready_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    last_hit_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("tenant_id", "key"),
        Index(
            "ix_cache_entries_semantic",
            "tenant_id",
            "scope",
            "embedding_model",
            "version",
            postgresql_where=text("embedding IS NOT NULL"),
        ),
        Index(
            "ix_cache_entries_expires_at", "expires_at", postgresql_where=text("state = 'ready'")
        ),
        Index("ix_cache_entries_job_id", "job_id"),
        # The sweep's scan for producers that ended without settling (few: those in flight).
        Index("ix_cache_entries_pending", "created_at", postgresql_where=text("state = 'pending'")),
        Index("ix_cache_entries_tenant_id_model", "tenant_id", "model"),
    )


class CacheHoldRow(Base):
    """A job that waits, ``waiting`` with no not-before time, for another job to end: an
    identical (or, semantically, a similar) request in flight whose answer it will reuse, or
    the embedding job that embeds its prompt for the semantic lookup."""

    __tablename__ = "cache_holds"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    holder_id: Mapped[str] = mapped_column(Text)  # no foreign key: a holder gone releases it
    reason: Mapped[str] = mapped_column(Text)  # identical | similar | embedding
    position: Mapped[int | None] = mapped_column(Integer)  # embedding: its input's index
    similarity: Mapped[float | None] = mapped_column(REAL)  # similar: to the holder's prompt
    created_at: Mapped[datetime] = _created()

    __table_args__ = (Index("ix_cache_holds_holder_id", "holder_id"),)


class TenantRow(Base):
    """Who owns jobs, batches and reports; callers authenticate with its gateway keys."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = _created()


class GatewayKeyRow(Base):
    """A tenant's key to this gateway: only its SHA-256 is kept (it is random, 256 bits)."""

    __tablename__ = "gateway_keys"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(Text)
    key_hash: Mapped[str] = mapped_column(Text, unique=True)
    last_four: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class BudgetRow(Base):
    """A spending limit for a tenant, or one project of it, per day, month or request."""

    __tablename__ = "budgets"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    project: Mapped[str | None] = mapped_column(Text)  # None: the whole tenant
    period: Mapped[str] = mapped_column(Text)  # day | month | request
    limit_usd: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        Index(
            "uq_budgets_tenant_id_project_period",
            "tenant_id",
            text("coalesce(project, '')"),
            "period",
            unique=True,
        ),
    )


class BudgetWindowRow(Base):
    """One budget's spend in one day or month: settled spend plus open reservations."""

    __tablename__ = "budget_windows"

    budget_id: Mapped[str] = mapped_column(
        ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True
    )
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    reserved_usd: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    spent_usd: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))


class RoutingPolicyRow(Base):
    """A named, prioritised rule set that maps request metadata to models (app/policies)."""

    __tablename__ = "routing_policies"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    description: Mapped[str] = mapped_column(Text, server_default="")
    priority: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class WebhookEndpointRow(Base):
    """A tenant's webhook URL with its own signing secret (Fernet-sealed, shown once)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    secret_hint: Mapped[str] = mapped_column(Text)  # "whsec_…abcd": how the secret is shown
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()

    __table_args__ = (UniqueConstraint("tenant_id", "url"),)


class WebhookEventRow(Base):
    """The outbox: one event for one URL, written with the outcome that caused it, then
    delivered (and retried) until it is delivered, fails for good or its endpoint is gone."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(Text, primary_key=True)  # the ``webhook-id`` header
    tenant_id: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    job_id: Mapped[str | None] = mapped_column(Text)
    batch_id: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    attempt_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    published_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    lease_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        # The sweep's scan: only events still to deliver.
        Index(
            "ix_webhook_events_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_events_tenant_id_created_at", "tenant_id", "created_at"),
        Index("ix_webhook_events_job_id", "job_id"),
        Index("ix_webhook_events_batch_id", "batch_id"),
    )


class WebhookAttemptRow(Base):
    """One try at delivering one event: what the receiver answered and when we try next."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str | None] = mapped_column(Text)
    number: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()

    __table_args__ = (UniqueConstraint("event_id", "number"),)


providers = cast(Table, ProviderRow.__table__)
models = cast(Table, ModelRow.__table__)
batches = cast(Table, BatchRow.__table__)
jobs = cast(Table, JobRow.__table__)
orchestrations = cast(Table, OrchestrationRow.__table__)
attempts = cast(Table, AttemptRow.__table__)
api_keys = cast(Table, ApiKeyRow.__table__)
tenants = cast(Table, TenantRow.__table__)
gateway_keys = cast(Table, GatewayKeyRow.__table__)
budgets = cast(Table, BudgetRow.__table__)
budget_windows = cast(Table, BudgetWindowRow.__table__)
routing_policies = cast(Table, RoutingPolicyRow.__table__)
files = cast(Table, FileRow.__table__)
cache_entries = cast(Table, CacheEntryRow.__table__)
cache_holds = cast(Table, CacheHoldRow.__table__)
file_chunks = cast(Table, FileChunkRow.__table__)


# -- reports: hourly rollups of finished jobs (see app/ledger/rollup.py) -------------------
# Key columns are NOT NULL ('' for "none") so that a key is one primary key, not a NULL maze.
def _key() -> Mapped[str]:
    return mapped_column(Text, primary_key=True)


class JobRollupRow(Base):
    """Finished jobs per hour or day (of ``finished_at``) and key: counts, tokens, cost."""

    __tablename__ = "job_rollups"

    span: Mapped[str] = _key()  # hour | day
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    tenant_id: Mapped[str] = _key()
    project: Mapped[str] = _key()
    provider: Mapped[str] = _key()
    model: Mapped[str] = _key()
    priority: Mapped[str] = _key()
    status: Mapped[str] = _key()
    error_class: Mapped[str] = _key()
    jobs: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    cached_tokens: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[Decimal] = mapped_column(Money)
    latency_ms_sum: Mapped[int] = mapped_column(BigInteger)
    cache: Mapped[str] = mapped_column(Text, primary_key=True, server_default="")  # jobs.cache
    cost_saved_usd: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))


class LatencyRollupRow(Base):
    """Finished jobs per hour or day, key and latency bucket (log scale): percentiles."""

    __tablename__ = "latency_rollups"

    span: Mapped[str] = _key()  # hour | day
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    tenant_id: Mapped[str] = _key()
    project: Mapped[str] = _key()
    provider: Mapped[str] = _key()
    model: Mapped[str] = _key()
    priority: Mapped[str] = _key()
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    jobs: Mapped[int] = mapped_column(BigInteger)


class CostRollupRow(Base):
    """Attempts of jobs finished in the hour or day, per key: what each model and key cost."""

    __tablename__ = "cost_rollups"

    span: Mapped[str] = _key()  # hour | day
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    tenant_id: Mapped[str] = _key()
    project: Mapped[str] = _key()
    provider: Mapped[str] = _key()
    model: Mapped[str] = _key()
    priority: Mapped[str] = _key()
    key_id: Mapped[str] = _key()
    attempts: Mapped[int] = mapped_column(BigInteger)
    failed_attempts: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[Decimal] = mapped_column(Money)


class RollupWatermarkRow(Base):
    """Rollups hold every job finished before ``rolled_until``; reports read the rest raw."""

    __tablename__ = "rollup_watermarks"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    rolled_until: Mapped[datetime]
    updated_at: Mapped[datetime] = _created()


# Reports read finished jobs by time (the live tail and the rollup's recomputed hours).
Index("ix_jobs_finished_at", JobRow.finished_at, postgresql_where=text("finished_at IS NOT NULL"))
# The latest failures (the dashboard): failed jobs only, however many succeeded around them.
Index("ix_jobs_failed_finished_at", JobRow.finished_at, postgresql_where=text("status = 'failed'"))

job_rollups = cast(Table, JobRollupRow.__table__)
latency_rollups = cast(Table, LatencyRollupRow.__table__)
cost_rollups = cast(Table, CostRollupRow.__table__)
rollup_watermarks = cast(Table, RollupWatermarkRow.__table__)


webhook_endpoints = cast(Table, WebhookEndpointRow.__table__)
webhook_events = cast(Table, WebhookEventRow.__table__)
webhook_attempts = cast(Table, WebhookAttemptRow.__table__)
