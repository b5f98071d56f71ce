"""What an orchestration's rules see (its steps as they stand) and what they decide next.

The rules (``chain.next_moves``, ``ensemble.next_moves``) are pure functions from the
orchestration's stored spec and its steps to a list of moves; ``progress`` reads the steps
and carries the moves out, under the orchestration's row lock, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.jobs.states import LIVE, JobStatus
from app.orchestration.steps import NewStep


@dataclass(frozen=True, slots=True)
class Step:
    """One step (or branch, or judge) job, as the rules need it."""

    id: str
    index: int
    role: str
    status: JobStatus
    result: dict[str, Any] | None = None
    error_class: str | None = None
    error_message: str | None = None
    model: str = ""  # the model that served it, or the one it is (or was last) on
    provider: str = ""
    priority: str = "normal"
    created_at: datetime | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)

    @property
    def live(self) -> bool:
        return self.status in LIVE

    @property
    def succeeded(self) -> bool:
        return self.status is JobStatus.SUCCEEDED

    @property
    def text(self) -> str:
        """Its answer's text ("" without one: an output a later prompt can still use)."""
        return str((self.result or {}).get("text") or "")

    def failure(self) -> str:
        """Why it did not succeed, in one line."""
        if self.status is JobStatus.CANCELLED:
            return "it was cancelled"
        return f"{self.error_class or 'unknown'}: {self.error_message or 'no message'}"


@dataclass(frozen=True, slots=True)
class Create:
    """Insert this step (its budget holds come from the orchestration's pending ones)."""

    step: NewStep


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel these steps if no worker holds them yet: their answers are not needed."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Promote:
    """Start these waiting (hedged) steps now."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Finish:
    """End the orchestration: succeeded with ``result``, or failed with an error class."""

    succeeded: bool
    result: dict[str, Any] | None = None
    synthesis: dict[str, Any] = field(default_factory=dict)
    error_class: str | None = None
    error_message: str | None = None


Move = Create | Cancel | Promote | Finish


def failed(error_class: str, message: str, **synthesis: Any) -> Finish:
    return Finish(False, error_class=error_class, error_message=message, synthesis=synthesis)


def live_ids(steps: list[Step]) -> tuple[str, ...]:
    return tuple(s.id for s in steps if s.live)
