"""What the orchestration tests share: waiting for a chain or ensemble, reading the ledger."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import Engine, text

from tests.conftest import TERMINAL, wait_until


def finished(api: httpx.Client, orchestration_id: str, *, timeout: float = 60.0) -> dict[str, Any]:
    """The chain or ensemble once it has ended (and its steps with it), as the API shows it."""
    seen: dict[str, Any] = {}

    def ended() -> bool:
        seen.update(api.get(f"/v1/jobs/{orchestration_id}").json())
        steps = seen.get("steps") or []
        return seen.get("status") in TERMINAL and all(s["status"] in TERMINAL for s in steps)

    wait_until(ended, timeout=timeout, every=0.1)
    return seen


def step_requests(engine: Engine, orchestration_id: str) -> list[dict[str, Any]]:
    """Each step's stored request, in step order."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT request FROM jobs WHERE parent_id = :id ORDER BY step_index"),
            {"id": orchestration_id},
        ).scalars()
        return list(rows)


def ledger_totals(engine: Engine, orchestration_id: str) -> tuple[int, int, Decimal]:
    """Input tokens, output tokens and cost summed over every attempt of every step."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT coalesce(sum(a.input_tokens), 0), coalesce(sum(a.output_tokens), 0), "
                "coalesce(sum(a.cost_usd), 0) FROM attempts a JOIN jobs j ON j.id = a.job_id "
                "WHERE j.parent_id = :id"
            ),
            {"id": orchestration_id},
        ).one()
    return int(row[0]), int(row[1]), Decimal(row[2])


def user_prompt(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"])
