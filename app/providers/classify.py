"""Every provider failure, whatever its wire shape, sorted into the one error taxonomy.

Two steps, both pure:

1. ``report_from_body`` reads an error body into an ``ErrorReport`` — the status, the
   message, every machine-readable tag (code, type, gRPC status, ``ErrorInfo`` reasons) and
   any retry hint in the body. It understands all the shapes real traffic uses:
   OpenAI ``{"error": {...}}``, Anthropic ``{"type": "error", "error": {...}}``, Google
   ``{"error": {"code", "status", "details"}}`` (also wrapped in a one-element array),
   Ollama ``{"error": "text"}`` and vLLM's flat ``{"object": "error", "message", ...}``.
2. ``classify`` turns a report into the right ``ProviderError`` subclass. The rules are in
   ``kind_of``, in the order they are tried; the first match wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from app.providers.errors import ERROR_BY_KIND, ErrorKind, ProviderError
from app.providers.ratelimit_headers import parse_duration
from app.providers.wire import safe_excerpt

MESSAGE_CHARS = 300


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """What a provider said went wrong, before classification.

    ``status`` is the HTTP status, or — for an error that arrived in a 200 body or mid-stream —
    the status the body itself claims (``None`` when it claims none). ``codes`` hold every
    machine-readable tag, most specific first.
    """

    status: int | None
    message: str
    codes: tuple[str, ...] = ()
    retry_after: float | None = None

    def with_codes(self, *codes: str) -> ErrorReport:
        return replace(self, codes=(*codes, *self.codes))


# -- rule tables ---------------------------------------------------------------------------

_CONTEXT_WORDING = re.compile(
    "|".join(
        (
            r"maximum context length",  # OpenAI, Groq, vLLM, OpenRouter, Mistral
            r"context[ _]length[ _]exceeded",
            r"prompt is too long",  # Anthropic
            r"exceed(?:s|ed)? (?:the )?context (?:limit|window)",  # Anthropic, others
            r"exceeds the maximum number of tokens",  # Gemini
            r"exceeds the (?:available )?context (?:length|size)",  # Ollama, llama.cpp
            r"context length of only",  # LM Studio
            r"input is too long",  # Bedrock-backed proxies
        )
    ),
    re.IGNORECASE,
)
# Context-length wording is only trusted on statuses that mean "your request is wrong":
# a 429 saying "reduce the prompt length" is still a rate limit.
_CONTEXT_STATUSES = (None, 400, 413, 422)

_CONTEXT_CODES = frozenset({"context_length_exceeded"})
_CONTENT_FILTER_CODES = frozenset(
    {"content_filter", "content_policy_violation", "moderation_flagged", "prohibited_content"}
)
# Gemini answers a bad key with 400 INVALID_ARGUMENT + reason API_KEY_INVALID, so these win
# over the status.
_AUTH_CODES = frozenset(
    {
        "invalid_api_key",
        "authentication_error",
        "permission_error",
        "api_key_invalid",
        "api_key_expired",
        "unauthenticated",
        "permission_denied",
        "account_deactivated",
        # Out of credit (OpenAI sends it as a 429, Anthropic as billing_error): waiting won't
        # help and this key is unusable until someone pays; another key or model may not be.
        "insufficient_quota",
        "billing_error",
    }
)

# The model is gone or absent, whatever the status says: Groq answers a retired model with
# 400 model_decommissioned, LM Studio a model that is not loaded with a 400 or 404.
_GONE_CODES = frozenset({"model_decommissioned", "model_not_loaded"})

_KIND_BY_STATUS: dict[int, ErrorKind] = {
    400: ErrorKind.INVALID_REQUEST,
    401: ErrorKind.AUTH,
    402: ErrorKind.AUTH,  # out of credit: this key is unusable, another may not be
    403: ErrorKind.AUTH,
    404: ErrorKind.NOT_FOUND,
    408: ErrorKind.TIMEOUT,
    410: ErrorKind.NOT_FOUND,  # retired model
    413: ErrorKind.INVALID_REQUEST,
    422: ErrorKind.INVALID_REQUEST,
    429: ErrorKind.RATE_LIMIT,
    504: ErrorKind.TIMEOUT,
    529: ErrorKind.OVERLOADED,
}

# Tags that decide the kind when the status does not (errors mid-stream or in a 200 body).
_KIND_BY_CODE: dict[str, ErrorKind] = {
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "resource_exhausted": ErrorKind.RATE_LIMIT,
    "overloaded_error": ErrorKind.OVERLOADED,
    "capacity_exceeded": ErrorKind.OVERLOADED,
    "unavailable": ErrorKind.OVERLOADED,
    "api_error": ErrorKind.SERVER_ERROR,
    "server_error": ErrorKind.SERVER_ERROR,
    "internal": ErrorKind.SERVER_ERROR,
    "internal_server_error": ErrorKind.SERVER_ERROR,
    "timeout_error": ErrorKind.TIMEOUT,
    "deadline_exceeded": ErrorKind.TIMEOUT,
    "model_not_found": ErrorKind.NOT_FOUND,
    "not_found_error": ErrorKind.NOT_FOUND,
    "not_found": ErrorKind.NOT_FOUND,
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
    "invalid_argument": ErrorKind.INVALID_REQUEST,
    "request_too_large": ErrorKind.INVALID_REQUEST,
}

_OVERLOADED_WORDING = re.compile(r"overloaded|capacity", re.IGNORECASE)
_RATE_LIMIT_WORDING = re.compile(r"rate.?limit", re.IGNORECASE)

# "Please try again in 3.89s." (OpenAI, Groq), "Please retry in 37.48s." (Gemini)
_RETRY_IN = re.compile(
    r"(?:try again|retry) in ((?:\d+(?:\.\d+)?(?:h|ms|us|µs|ns|m|s))+)", re.IGNORECASE
)


def kind_of(report: ErrorReport) -> ErrorKind:
    """The taxonomy kind of a report; the rules are tried top to bottom."""
    codes = {code.lower() for code in report.codes}
    if codes & _CONTEXT_CODES or (
        report.status in _CONTEXT_STATUSES and _CONTEXT_WORDING.search(report.message)
    ):
        return ErrorKind.CONTEXT_LENGTH
    if codes & _CONTENT_FILTER_CODES:
        return ErrorKind.CONTENT_FILTER
    if codes & _AUTH_CODES:
        return ErrorKind.AUTH
    if codes & _GONE_CODES:
        return ErrorKind.NOT_FOUND
    if report.status == 503:
        overloaded = "unavailable" in codes or "overloaded_error" in codes
        if overloaded or _OVERLOADED_WORDING.search(report.message):
            return ErrorKind.OVERLOADED
        return ErrorKind.SERVER_ERROR
    if report.status is not None:
        if report.status in _KIND_BY_STATUS:
            return _KIND_BY_STATUS[report.status]
        if report.status >= 500:
            return ErrorKind.SERVER_ERROR
    for code in report.codes:
        if code.lower() in _KIND_BY_CODE:
            return _KIND_BY_CODE[code.lower()]
    if _OVERLOADED_WORDING.search(report.message):
        return ErrorKind.OVERLOADED
    if _RATE_LIMIT_WORDING.search(report.message):
        return ErrorKind.RATE_LIMIT
    return ErrorKind.UNKNOWN


def classify(report: ErrorReport, *, provider: str, secrets: tuple[str, ...] = ()) -> ProviderError:
    """The ``ProviderError`` for ``report``; its message never carries a request secret."""
    kind = kind_of(report)
    where = f"{provider} {report.status}" if report.status is not None else provider
    text = safe_excerpt(report.message, secrets, MESSAGE_CHARS) or "(no message)"
    return ERROR_BY_KIND[kind](
        f"{where}: {text}",
        status_code=report.status,
        retry_after=report.retry_after,
        provider_code=report.codes[0] if report.codes else None,
    )


def report_from_body(body: Any, *, http_status: int | None) -> ErrorReport | None:
    """Read an error out of a decoded body; ``None`` when the body is not an error.

    ``http_status`` is the response's status (``None`` mid-stream). An error status wins; with
    a success status (OpenRouter sends errors with 200) the body's own numeric code stands in.
    """
    if isinstance(body, list) and len(body) == 1:  # Google wraps errors in [ {...} ]
        body = body[0]
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if error is None and body.get("object") == "error":  # vLLM's flat error object
        error = body
    if isinstance(error, str):  # Ollama, llama.cpp and friends
        return ErrorReport(status=_effective_status(http_status, None), message=error)
    if not isinstance(error, dict):
        return None
    body_code = error.get("code")
    tags = [body_code] if isinstance(body_code, str) else []
    tags += [reason for reason in _detail_values(error, "reason") if isinstance(reason, str)]
    tags += [tag for tag in (error.get("type"), error.get("status")) if isinstance(tag, str)]
    message = error.get("message")
    return ErrorReport(
        status=_effective_status(http_status, body_code),
        message=message if isinstance(message, str) else "",
        codes=tuple(dict.fromkeys(tags)),
        retry_after=_retry_hint(error, message if isinstance(message, str) else ""),
    )


def _effective_status(http_status: int | None, body_code: Any) -> int | None:
    if http_status is not None and http_status >= 400:
        return http_status
    if isinstance(body_code, int) and not isinstance(body_code, bool) and body_code >= 400:
        return body_code
    if isinstance(body_code, str) and body_code.isdigit() and int(body_code) >= 400:
        return int(body_code)
    return None


def _detail_values(error: dict[str, Any], key: str) -> list[Any]:
    """``key`` of each entry in a Google error's ``details`` list."""
    details = error.get("details")
    if not isinstance(details, list):
        return []
    return [item[key] for item in details if isinstance(item, dict) and key in item]


def _retry_hint(error: dict[str, Any], message: str) -> float | None:
    """A wait the body suggests: Google's RetryInfo first, then "try again in Xs" wording."""
    for delay in _detail_values(error, "retryDelay"):
        seconds = parse_duration(delay) if isinstance(delay, str) else None
        if seconds is not None:
            return seconds
    match = _RETRY_IN.search(message)
    return parse_duration(match.group(1)) if match else None
