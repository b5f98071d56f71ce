"""``/v1/breakers``: which providers and models are being routed around, and why."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel

from app.api.deps import State
from app.errors import Unavailable
from app.routing.breakers import BreakerState, BreakerStatus, CircuitBreakers

router = APIRouter(prefix="/v1/breakers", tags=["breakers"])


class BreakerOut(BaseModel):
    target: str
    state: BreakerState
    consecutive_failures: int
    opened_at: float | None
    open_until: float | None
    last_failure: str | None
    forced: bool


class BreakerList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BreakerOut]


def _breakers(state: State) -> CircuitBreakers:
    if state.breakers is None:
        raise Unavailable("circuit breakers are not configured", code="no_breakers")
    return state.breakers


def _out(status: BreakerStatus) -> BreakerOut:
    return BreakerOut(
        target=status.target,
        state=status.state,
        consecutive_failures=status.consecutive_failures,
        opened_at=status.opened_at,
        open_until=status.open_until,
        last_failure=status.last_failure,
        forced=status.forced,
    )


@router.get("", summary="Breakers that are open, half-open or counting failures")
def list_breakers(state: State) -> BreakerList:
    return BreakerList(data=[_out(s) for s in _breakers(state).all()])


Target = Annotated[str, Path(max_length=200, pattern=r"^(provider|model):[A-Za-z0-9_.:/@-]+$")]


@router.post("/{target}/reset", summary="Close a breaker now", response_model=BreakerOut)
def reset_breaker(target: Target, state: State) -> BreakerOut:
    breakers = _breakers(state)
    breakers.reset(target)
    return _out(breakers.status(target))
