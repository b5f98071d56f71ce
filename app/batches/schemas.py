"""The batch object on the wire, in OpenAI's shape plus Switchboard's additions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class RequestCounts(BaseModel):
    total: int
    completed: int = Field(description="Requests that succeeded.")
    failed: int


class TokenDetails(BaseModel):
    cached_tokens: int = 0


class OutputTokenDetails(BaseModel):
    reasoning_tokens: int = 0


class BatchUsage(BaseModel):
    input_tokens: int
    input_tokens_details: TokenDetails
    output_tokens: int
    output_tokens_details: OutputTokenDetails
    total_tokens: int


class BatchOut(BaseModel):
    """A batch, as OpenAI's Batch API shapes it (unix-second timestamps)."""

    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    model: str | None
    errors: dict[str, Any] | None
    input_file_id: str | None
    completion_window: str
    status: Literal[
        "validating",
        "in_progress",
        "finalizing",
        "completed",
        "failed",
        "expired",
        "cancelling",
        "cancelled",
    ]
    output_file_id: str | None
    error_file_id: str | None
    created_at: int
    in_progress_at: int | None
    expires_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    request_counts: RequestCounts
    usage: BatchUsage
    metadata: dict[str, str] | None
    priority: Literal["high", "normal", "low"]
    cost_usd: str = Field(description="Exact decimal, USD, of the requests finished so far.")
    job_ids: list[str] | None = Field(
        default=None, description="On creation only: the jobs, in the order of the requests."
    )


class BatchList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchOut]
    first_id: str | None
    last_id: str | None
    has_more: bool
