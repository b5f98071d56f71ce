"""What ``GET /v1/dashboard`` answers: one snapshot of everything the status page draws."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.routing.breakers import BreakerState


class ServicesOut(BaseModel):
    postgres: bool
    redis: bool


class QueueOut(BaseModel):
    queue: str = Field(description="The Celery queue, <provider>.<priority>.")
    provider: str
    priority: str
    messages: int | None = Field(description="Messages on the queue (null: Redis unavailable).")
    queued: int | None = Field(description="Jobs queued for it in Postgres (null: unavailable).")
    waiting: int | None = Field(description="Jobs set aside until a not-before time.")
    running: int | None = Field(description="Jobs a worker holds.")


class MinuteOut(BaseModel):
    minute: datetime
    succeeded: int
    failed: int
    cancelled: int


class ThroughputOut(BaseModel):
    per_minute: list[MinuteOut] = Field(description="Jobs finished in each of the last 60 minutes.")
    jobs_per_minute: float = Field(description="Their average over the hour.")


class LastHourOut(BaseModel):
    jobs: int
    succeeded: int
    failed: int
    cancelled: int
    success_rate: float | None = Field(description="succeeded / (succeeded + failed).")
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cost_usd: str


class SpendLineOut(BaseModel):
    model: str
    cost_usd: str
    percent: float
    attempts: int


class SpendOut(BaseModel):
    period: Literal["24h"] = "24h"
    total_cost_usd: str
    by_model: list[SpendLineOut]


class FailureOut(BaseModel):
    job_id: str
    model: str
    provider: str
    error_class: str | None
    message: str | None
    finished_at: datetime


class BreakerOut(BaseModel):
    target: str
    state: BreakerState
    consecutive_failures: int
    open_until: float | None = Field(description="Unix seconds, by the Redis clock.")
    last_failure: str | None
    forced: bool = Field(description="Opened by the gateway (e.g. a model the provider lacks).")


class DashboardOut(BaseModel):
    object: Literal["dashboard"] = "dashboard"
    generated_at: datetime
    tenant: str | None = Field(description="The tenant the ledger figures are limited to.")
    services: ServicesOut
    queues: list[QueueOut]
    webhook_messages: int | None = Field(description="Messages on the webhook delivery queue.")
    webhook_events_pending: int | None
    delayed_jobs: int | None = Field(description="Entries of the waiting jobs' timer index.")
    throughput: ThroughputOut
    last_hour: LastHourOut
    spend: SpendOut
    failures: list[FailureOut] = Field(description="The latest failed jobs, newest first.")
    breakers: list[BreakerOut] = Field(description="Breakers open, half-open or counting.")
