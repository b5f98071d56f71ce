"""Rate-limit and retry headers, read into a ``RateLimitSnapshot`` and plain seconds.

Providers disagree on the shape of the same facts:

- OpenAI, Groq, OpenRouter: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, the
  resets as Go durations (``"12ms"``, ``"3.89s"``, ``"6m0s"``, ``"172.799999ms"``);
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,
  remaining,reset}``, the resets as RFC 3339 timestamps;
- everyone: ``retry-after`` as seconds or an HTTP date, some also ``retry-after-ms``.

Headers are advisory: a value that does not parse is dropped, never raised.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from app.providers.types import RateLimitSnapshot

# One number-and-unit term of a Go duration; "m" must come after "ms" in the alternation.
_DURATION_TERM = r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|μs|ns|m|s)"
_DURATION_RE = re.compile(f"(?:{_DURATION_TERM})+")
_TERM_RE = re.compile(_DURATION_TERM)
_UNIT_SECONDS = {
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ns": 1e-9,
}


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style (``"1h2m3.5s"``) or protobuf (``"37s"``) duration.

    A bare number is taken as seconds (the ``retry-after`` convention). Returns ``None`` for
    anything else, including negative or non-finite values.
    """
    value = text.strip()
    if not value:
        return None
    if _DURATION_RE.fullmatch(value):
        return sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _TERM_RE.findall(value))
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def response_time(headers: Mapping[str, str]) -> datetime:
    """When the response was produced: its ``date`` header, or now if absent or unreadable.

    Reset timestamps are converted against this clock rather than ours, so a skewed local
    clock does not turn "resets in 2 s" into "reset an hour ago".
    """
    parsed = _http_date(headers.get("date", ""))
    return parsed if parsed is not None else datetime.now(UTC)


def parse_retry_after(value: str, *, now: datetime) -> float | None:
    """Seconds to wait from a ``retry-after`` value: delay-seconds or an HTTP date."""
    seconds = parse_duration(value)
    if seconds is not None:
        return seconds
    when = _http_date(value)
    return None if when is None else max((when - now).total_seconds(), 0.0)


def retry_after_from_headers(headers: Mapping[str, str]) -> float | None:
    """The wait a response's headers ask for, or ``None`` when they say nothing.

    ``retry-after-ms`` wins when present: it is the same advice at a precision the limiter
    can use (OpenAI's SDK reads it first for the same reason).
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        seconds = parse_duration(millis)
        if seconds is not None:
            return seconds / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    return parse_retry_after(value, now=response_time(headers))


def openai_style_snapshot(headers: Mapping[str, str]) -> RateLimitSnapshot | None:
    """``x-ratelimit-*`` headers (OpenAI, Groq, OpenRouter, vLLM proxies) as a snapshot."""
    snapshot = RateLimitSnapshot(
        requests_limit=_count(headers.get("x-ratelimit-limit-requests")),
        requests_remaining=_count(headers.get("x-ratelimit-remaining-requests")),
        requests_reset_s=_duration(headers.get("x-ratelimit-reset-requests")),
        tokens_limit=_count(headers.get("x-ratelimit-limit-tokens")),
        tokens_remaining=_count(headers.get("x-ratelimit-remaining-tokens")),
        tokens_reset_s=_duration(headers.get("x-ratelimit-reset-tokens")),
    )
    return None if snapshot.is_empty() else snapshot


def anthropic_style_snapshot(
    headers: Mapping[str, str], *, now: datetime | None = None
) -> RateLimitSnapshot | None:
    """``anthropic-ratelimit-*`` headers as a snapshot, resets in seconds from the response."""
    at = now if now is not None else response_time(headers)

    def field(bucket: str, suffix: str) -> str | None:
        return headers.get(f"anthropic-ratelimit-{bucket}-{suffix}")

    def reset(bucket: str) -> float | None:
        return _seconds_until(field(bucket, "reset"), at)

    snapshot = RateLimitSnapshot(
        requests_limit=_count(field("requests", "limit")),
        requests_remaining=_count(field("requests", "remaining")),
        requests_reset_s=reset("requests"),
        tokens_limit=_count(field("tokens", "limit")),
        tokens_remaining=_count(field("tokens", "remaining")),
        tokens_reset_s=reset("tokens"),
        input_tokens_limit=_count(field("input-tokens", "limit")),
        input_tokens_remaining=_count(field("input-tokens", "remaining")),
        input_tokens_reset_s=reset("input-tokens"),
        output_tokens_limit=_count(field("output-tokens", "limit")),
        output_tokens_remaining=_count(field("output-tokens", "remaining")),
        output_tokens_reset_s=reset("output-tokens"),
    )
    return None if snapshot.is_empty() else snapshot


def _count(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number >= 0 else None


def _duration(value: str | None) -> float | None:
    return None if value is None else parse_duration(value)


def _seconds_until(value: str | None, now: datetime) -> float | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def _http_date(value: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
