"""Rate-limit headers into snapshots; one duration parser for every provider's spelling."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from app.providers import RateLimitSnapshot, get_adapter
from app.providers.ratelimit_headers import (
    anthropic_style_snapshot,
    parse_duration,
    parse_retry_after,
    retry_after_from_headers,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("12ms", 0.012),
        ("3.89s", 3.89),
        ("6m0s", 360.0),
        ("1h2m3.5s", 3723.5),
        ("172.799999ms", 0.172799999),
        ("18m43.2s", 1123.2),
        ("0s", 0.0),
        ("26s", 26.0),  # protobuf Duration (Gemini RetryInfo)
        ("34.4s", 34.4),
        ("13", 13.0),  # bare seconds (retry-after)
        ("1.5", 1.5),
        ("500us", 0.0005),
        ("250ns", 2.5e-7),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "-1", "nan", "inf", "5 s", "1d", "s"])
def test_parse_duration_rejects(text: str) -> None:
    assert parse_duration(text) is None


def test_retry_after_http_date() -> None:
    now = datetime(2026, 1, 18, 10, 15, 0, tzinfo=UTC)
    assert parse_retry_after("Sun, 18 Jan 2026 10:15:13 GMT", now=now) == 13.0
    assert parse_retry_after("Sun, 18 Jan 2026 10:14:00 GMT", now=now) == 0.0  # past: go now


def test_retry_after_headers_prefer_milliseconds() -> None:
    headers = httpx.Headers({"retry-after": "4", "retry-after-ms": "3890"})
    assert retry_after_from_headers(headers) == pytest.approx(3.89)
    assert retry_after_from_headers(httpx.Headers({"retry-after": "4"})) == 4.0
    assert retry_after_from_headers(httpx.Headers({})) is None


@pytest.mark.parametrize("name", ["openai", "groq", "openrouter"])
def test_openai_style_headers(name: str) -> None:
    headers = httpx.Headers(
        {
            "x-ratelimit-limit-requests": "5000",
            "x-ratelimit-remaining-requests": "4999",
            "x-ratelimit-reset-requests": "12ms",
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "1961",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    )
    assert get_adapter(name).parse_rate_limits(headers) == RateLimitSnapshot(
        requests_limit=5000,
        requests_remaining=4999,
        requests_reset_s=0.012,
        tokens_limit=30000,
        tokens_remaining=1961,
        tokens_reset_s=360.0,
    )


def test_no_headers_no_snapshot() -> None:
    for name in ("openai", "anthropic", "gemini", "ollama"):
        assert get_adapter(name).parse_rate_limits(httpx.Headers({})) is None


def test_unreadable_values_are_dropped_not_raised() -> None:
    headers = httpx.Headers({"x-ratelimit-limit-requests": "lots", "x-ratelimit-reset-tokens": "?"})
    assert get_adapter("openai").parse_rate_limits(headers) is None


def test_anthropic_resets_count_from_the_response_date() -> None:
    headers = httpx.Headers(
        {
            "date": "Sun, 18 Jan 2026 10:15:00 GMT",
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2026-01-18T10:15:01Z",
            "anthropic-ratelimit-input-tokens-limit": "30000",
            "anthropic-ratelimit-input-tokens-remaining": "0",
            "anthropic-ratelimit-input-tokens-reset": "2026-01-18T10:15:13Z",
            "anthropic-ratelimit-output-tokens-reset": "2026-01-18T10:14:00Z",
            "anthropic-ratelimit-tokens-limit": "38000",
        }
    )
    snapshot = get_adapter("anthropic").parse_rate_limits(headers)
    assert snapshot == RateLimitSnapshot(
        requests_limit=50,
        requests_remaining=49,
        requests_reset_s=1.0,
        tokens_limit=38000,
        input_tokens_limit=30000,
        input_tokens_remaining=0,
        input_tokens_reset_s=13.0,
        output_tokens_reset_s=0.0,  # already reset
    )


def test_anthropic_resets_without_a_date_count_from_now() -> None:
    headers = httpx.Headers({"anthropic-ratelimit-requests-reset": "2030-01-01T00:00:10Z"})
    now = datetime(2030, 1, 1, tzinfo=UTC)
    snapshot = anthropic_style_snapshot(headers, now=now)
    assert snapshot is not None
    assert snapshot.requests_reset_s == 10.0


def test_a_successful_response_carries_its_rate_limits() -> None:
    body = {
        "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
    }
    response = httpx.Response(200, headers={"x-ratelimit-remaining-tokens": "99"}, json=body)
    completion = get_adapter("openai").parse_response(response)
    assert completion.rate_limits == RateLimitSnapshot(tokens_remaining=99)
