"""What a job keeps of one attempt: the provider call built from it, the row, the result."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.ledger.record import AttemptRecord
from app.providers.types import ChatCall, Completion
from app.registry.keys import ProviderKey
from app.registry.service import ModelInfo, ProviderInfo

MAX_ERROR_MESSAGE = 1000


def chat_call(
    request: dict[str, Any],
    model: ModelInfo,
    provider: ProviderInfo,
    key: ProviderKey,
    *,
    headers: Mapping[str, str] | None = None,
) -> ChatCall:
    """The provider call for a stored job request, on ``model`` with ``key``; ``headers`` are
    the provider's own extras (OpenRouter's attribution)."""
    return ChatCall(
        base_url=provider.base_url,
        model=model.upstream,
        messages=request["messages"],
        api_key=key.secret,
        max_tokens=request.get("max_tokens"),
        temperature=request.get("temperature"),
        top_p=request.get("top_p"),
        stop=request.get("stop"),
        tools=request.get("tools"),
        tool_choice=request.get("tool_choice"),
        response_format=request.get("response_format"),
        seed=request.get("seed"),
        user=request.get("user"),
        extra_headers=dict(headers or {}),
    )


def result_document(completion: Completion) -> dict[str, Any]:
    """What the job row keeps of a completion."""
    return {
        "text": completion.text,
        "finish_reason": completion.finish_reason,
        "tool_calls": [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in completion.tool_calls
        ],
        "response_id": completion.response_id,
        **(
            {"upstream_provider": completion.upstream_provider}
            if completion.upstream_provider
            else {}
        ),
    }


@dataclass(frozen=True, slots=True)
class Stopwatch:
    """When an attempt began, to stamp its row."""

    started_at: datetime
    t0: float

    @classmethod
    def start(cls) -> Stopwatch:
        return cls(datetime.now(UTC), time.perf_counter())

    def ms(self) -> int:
        return round((time.perf_counter() - self.t0) * 1000)


def attempt_row(
    model: ModelInfo,
    watch: Stopwatch,
    *,
    decision: str,
    reason: str | None = None,
    key: ProviderKey | None = None,
    **details: Any,
) -> AttemptRecord:
    message = details.pop("error_message", None)
    return AttemptRecord(
        model_id=model.id,
        provider=model.provider,
        started_at=watch.started_at,
        finished_at=datetime.now(UTC),
        latency_ms=watch.ms(),
        decision=decision,
        decision_reason=reason,
        key_id=key.id if key is not None else None,
        error_message=message[:MAX_ERROR_MESSAGE] if message else None,
        **details,
    )
