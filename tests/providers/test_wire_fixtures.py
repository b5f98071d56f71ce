"""Every recorded provider payload in tests/fixtures/wire, through its adapter.

Each fixture is one real response, error or stream; ``expect`` says what the gateway must
make of it. Responses go through ``parse_response`` (or ``parse_embeddings``), streams
through ``parse_stream``, exactly as the worker would feed them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.providers import (
    Completion,
    ProviderError,
    get_adapter,
    get_embeddings_adapter,
)

WIRE = Path(__file__).resolve().parents[1] / "fixtures" / "wire"
FIXTURES = sorted(WIRE.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def as_response(fixture: dict[str, Any]) -> httpx.Response:
    return httpx.Response(
        fixture["http_status"],
        headers=fixture["headers"],
        content=json.dumps(fixture["body"]).encode(),
        request=httpx.Request("POST", "https://provider.test/v1/endpoint"),
    )


def run(fixture: dict[str, Any]) -> Any:
    """The fixture through its adapter: a Completion, Embeddings, or the raised error."""
    expect = fixture["expect"]
    try:
        if "embedding_count" in expect:
            return get_embeddings_adapter(fixture["provider"]).parse_embeddings(
                as_response(fixture)
            )
        adapter = get_adapter(fixture["provider"])
        if fixture["kind"] == "stream":
            return adapter.parse_stream(fixture["body"], headers=httpx.Headers(fixture["headers"]))
        return adapter.parse_response(as_response(fixture))
    except ProviderError as exc:
        return exc


def test_the_fixture_folder_is_not_empty() -> None:
    assert len(FIXTURES) >= 48


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_fixture(path: Path) -> None:
    fixture = load(path)
    expect = fixture["expect"]
    outcome = run(fixture)

    if expect["error_class"] == "none":
        assert not isinstance(outcome, ProviderError), repr(outcome)
        completion = outcome
    else:
        assert isinstance(outcome, ProviderError), (
            f"expected {expect['error_class']}, got {outcome!r}"
        )
        assert outcome.kind == expect["error_class"], repr(outcome)
        if expect["retry_after_s"] is None:
            assert outcome.retry_after is None
        else:
            assert outcome.retry_after == pytest.approx(expect["retry_after_s"])
        # A filtered answer still reports what was generated (and billed).
        completion = outcome.completion

    if "embedding_count" in expect:
        assert len(completion.vectors) == expect["embedding_count"]
        assert {len(v) for v in completion.vectors} == {expect["embedding_dim"]}
        # null means "not reported": 0 is the normalisation.
        assert completion.usage.prompt_tokens == (expect["prompt_tokens"] or 0)
        assert completion.usage.completion_tokens == (expect["completion_tokens"] or 0)
        return

    if completion is None:  # an error with no completion behind it
        for key in ("text", "prompt_tokens", "completion_tokens", "finish_reason"):
            assert expect[key] is None, key
        return

    assert isinstance(completion, Completion)
    assert completion.text == expect["text"]
    assert completion.finish_reason == expect["finish_reason"]
    assert completion.usage.prompt_tokens == expect["prompt_tokens"]
    assert completion.usage.completion_tokens == expect["completion_tokens"]
    if "reasoning_tokens" in expect:
        assert completion.usage.reasoning_tokens == expect["reasoning_tokens"]
    expected_calls = expect.get("tool_calls", [])
    assert len(completion.tool_calls) == len(expected_calls)
    for call, wanted in zip(completion.tool_calls, expected_calls, strict=True):
        assert call.name == wanted["name"]
        assert json.loads(call.arguments) == wanted["arguments"]
        if "id" in wanted:
            assert call.id == wanted["id"]
