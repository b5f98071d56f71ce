"""Submitting a job from an endpoint: one transaction, then the publish after its commit."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from app.api.auth import Caller, CurrentCaller
from app.api.deps import CurrentRegistry, State, UnitOfWork
from app.api.publish import publish_after_commit
from app.api.state import ApiState
from app.cache.directives import CacheConfig
from app.cache.lookup import CacheAtSubmission
from app.embeddings.schemas import EmbeddingJobCreate
from app.jobs.schemas import JobCreate
from app.jobs.service import submit_job
from app.jobs.states import JobStatus
from app.metrics.api import ApiMetrics, CurrentMetrics
from app.policies.endpoints import Policies
from app.policies.store import PolicyCache
from app.registry.service import Registry
from app.routing.live import CurrentPerformance
from app.routing.performance import PerformanceCache
from app.webhooks.routes import adopt


@dataclass(frozen=True, slots=True)
class Accepted:
    """A committed job, as the submitting endpoint answers about it."""

    id: str
    status: JobStatus
    created: bool


@dataclass(frozen=True, slots=True)
class JobSubmitter:
    """The one way an endpoint submits a job (``POST /v1/jobs``, chat and text completions,
    embeddings): insert it (tenant, budgets, routing) in one transaction, then publish it
    once that committed."""

    caller: Caller
    state: ApiState
    uow: Callable[[], AbstractContextManager[Session]]
    registry: Registry
    performance: PerformanceCache
    policies: PolicyCache
    metrics: ApiMetrics

    def submit(
        self,
        spec: JobCreate | EmbeddingJobCreate,
        idempotency_key: str | None,
        *,
        awaited: bool = False,
    ) -> Accepted:
        """``awaited``: the caller waits on the request for the job's end (see ``job_end``)."""
        state, tenant_id = self.state, self.caller.tenant_id
        cache = CacheAtSubmission(
            CacheConfig.from_settings(state.settings), self.registry, tenant_id
        )
        with self.uow() as session:
            notify = adopt(session, state, tenant_id, spec.webhook_url)
            submitted = submit_job(
                session,
                spec,
                self.registry,
                tenant_id=tenant_id,
                default_deadline_s=state.settings.default_deadline_s,
                idempotency_key=idempotency_key,
                usable=state.usable,
                performance=self.performance.get,
                policies=self.policies.get,
                notify=notify,
                awaited=awaited,
                cache=cache,
            )
            job = submitted.job
            accepted = Accepted(job.id, JobStatus(job.status), submitted.created)
        if submitted.to_publish:
            publish_after_commit(state.dispatcher, submitted.to_publish)
        if submitted.created:
            self.metrics.cache_counted(cache.counts)
        return accepted


async def _submitter(
    caller: CurrentCaller,
    state: State,
    uow: UnitOfWork,
    registry: CurrentRegistry,
    performance: CurrentPerformance,
    policies: Policies,
    metrics: CurrentMetrics,
) -> JobSubmitter:
    return JobSubmitter(caller, state, uow, registry, performance, policies, metrics)


Submitter = Annotated[JobSubmitter, Depends(_submitter)]
