"""Submitting a chain or an ensemble from an endpoint: plan, one transaction, then publish."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy.orm import Session

from app.api.auth import Caller, CurrentCaller
from app.api.deps import CurrentRegistry, State, UnitOfWork
from app.api.publish import publish_after_commit
from app.api.state import ApiState
from app.jobs.delayed import DelayedJobs
from app.jobs.schemas import JobOptions
from app.orchestration.plans import Planned, Router
from app.orchestration.service import Submitted, submit_orchestration
from app.policies.endpoints import Policies
from app.policies.store import PolicyCache
from app.registry.service import Registry
from app.routing.live import CurrentPerformance
from app.routing.performance import PerformanceCache
from app.routing.plan import PolicySource
from app.webhooks.routes import adopt

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OrchestrationSubmitter:
    """The one way an endpoint submits a chain or an ensemble: plan it (every step routed
    and checked), insert it with its first steps and budget reservations in one transaction,
    then publish those steps once that committed."""

    caller: Caller
    state: ApiState
    uow: Callable[[], AbstractContextManager[Session]]
    registry: Registry
    performance: PerformanceCache
    policies: PolicyCache

    def router(self) -> Router:
        return Router(
            self.registry,
            performance=self.performance.get,
            usable=self.state.usable,
            policies=PolicySource(self.policies.get, self.caller.tenant_id),
        )

    def submit(
        self,
        planner: Callable[[Router], Planned],
        options: JobOptions,
        payload: dict[str, Any],
        idempotency_key: str | None,
    ) -> Submitted:
        planned = planner(self.router())
        state, tenant_id = self.state, self.caller.tenant_id
        with self.uow() as session:
            steps_notify = adopt(session, state, tenant_id, None)
            notify = adopt(session, state, tenant_id, options.webhook_url)
            submitted = submit_orchestration(
                session,
                planned,
                options,
                tenant_id=tenant_id,
                default_deadline_s=state.settings.default_deadline_s,
                payload=payload,
                idempotency_key=idempotency_key,
                notify=notify,
                steps_notify=steps_notify,
            )
        if submitted.created:
            publish_after_commit(state.dispatcher, submitted.publish)
            self._set_aside(submitted.delayed)
        return submitted

    def _set_aside(self, delayed: list[tuple[str, float]]) -> None:
        """Hedged branches wait in the delayed set; if Redis fails here, the reconciler
        promotes them once their time has passed."""
        if not delayed:
            return
        try:
            waiting = DelayedJobs(self.state.redis)
            for job_id, not_before in delayed:
                waiting.add(job_id, not_before)
        except Exception as exc:
            log.warning("hedged branches not set aside (%s); the reconciler will", exc)


async def _submitter(
    caller: CurrentCaller,
    state: State,
    uow: UnitOfWork,
    registry: CurrentRegistry,
    performance: CurrentPerformance,
    policies: Policies,
) -> OrchestrationSubmitter:
    return OrchestrationSubmitter(caller, state, uow, registry, performance, policies)


Submitter = Annotated[OrchestrationSubmitter, Depends(_submitter)]
