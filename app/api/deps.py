"""Dependencies endpoints declare, as ``Annotated`` aliases.

A dependency that does no I/O is ``async def``: FastAPI runs a plain ``def`` one in its
threadpool, and a request with eight of them paid eight thread hops before its endpoint ran.
One that may block (a session, a snapshot that reloads from Postgres) stays ``def``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from app.api.state import ApiState
from app.db.engine import unit_of_work
from app.registry.service import Registry

MAX_IDEMPOTENCY_KEY = 255


async def _state(request: Request) -> ApiState:
    state: ApiState = request.app.state.switchboard
    return state


def _session(state: Annotated[ApiState, Depends(_state)]) -> Iterator[Session]:
    """A read session; writes go through ``UnitOfWork`` so publishing can follow the commit."""
    with state.sessions() as session:
        yield session


async def _unit_of_work(
    state: Annotated[ApiState, Depends(_state)],
) -> Callable[[], AbstractContextManager[Session]]:
    return lambda: unit_of_work(state.sessions)


async def _registry(state: Annotated[ApiState, Depends(_state)]) -> Registry:
    """The registry snapshot; reloaded in a thread when it is due (a Postgres read)."""
    snapshot = state.registry.fresh()
    return snapshot if snapshot is not None else await run_in_threadpool(state.registry.get)


async def _idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=MAX_IDEMPOTENCY_KEY,
            pattern=r"^[\x20-\x7e]+$",
            description="Resubmitting with the same key returns the original, never a second one.",
        ),
    ] = None,
) -> str | None:
    return idempotency_key


State = Annotated[ApiState, Depends(_state)]
ReadSession = Annotated[Session, Depends(_session)]
UnitOfWork = Annotated[Callable[[], AbstractContextManager[Session]], Depends(_unit_of_work)]
CurrentRegistry = Annotated[Registry, Depends(_registry)]
IdempotencyKey = Annotated[str | None, Depends(_idempotency_key)]
