"""Why a simulated request fails, independent of how each wire format words it.

The engine (and the formats' request parsers) raise ``SimError`` with a ``Fault`` and the
facts a provider would put in its message; each ``WireFormat.render_error`` turns that into
the provider's own status code, body and wording.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Fault(StrEnum):
    """The failures the simulator can answer with."""

    NO_ROUTE = "no_route"  # the provider has no such endpoint
    AUTH = "auth"  # missing or unknown key
    INVALID_JSON = "invalid_json"  # the body is not JSON
    INVALID_REQUEST = "invalid_request"  # JSON, but not a valid request; ``detail`` says why
    NOT_FOUND = "not_found"  # unknown model
    CONTEXT_LENGTH = "context_length"  # prompt + output do not fit the window
    RATE_LIMIT = "rate_limit"  # a limiter bucket is short, or an injected 429
    SERVER_ERROR = "server_error"  # injected 500
    UNAVAILABLE = "unavailable"  # injected 503, or the provider is down
    OVERLOADED = "overloaded"  # injected 529 / 503 "overloaded"
    TIMEOUT = "timeout"  # injected hang, then 504


@dataclass(slots=True)
class RateLimitFacts:
    """The bucket that refused a request, for the 429 message and ``retry-after``."""

    kind: str  # "requests" | "tokens" | "input_tokens" | "output_tokens"
    limit: int  # per minute, as configured
    used: int
    requested: int
    retry_after_s: float  # exact seconds until every bucket would admit
    too_large: bool = False  # the request needs more than the bucket can ever hold


@dataclass(slots=True, eq=False)
class SimError(Exception):
    """A failure the simulator answers with; formats render it in their own shape."""

    fault: Fault
    detail: str = ""  # INVALID_REQUEST: the format's own message; NO_ROUTE: "METHOD /path"
    param: str | None = None  # INVALID_REQUEST: the offending field, where the format says it
    model: str = ""
    key: str | None = None  # AUTH: the key presented, for masked echoes; None when missing
    prompt_tokens: int = 0  # CONTEXT_LENGTH
    output_tokens: int = 0  # CONTEXT_LENGTH: the requested (or default) max output
    context_window: int = 0  # CONTEXT_LENGTH
    rate_limit: RateLimitFacts | None = None  # RATE_LIMIT

    def __str__(self) -> str:
        return f"{self.fault.value}: {self.detail}" if self.detail else self.fault.value
