"""The classification rules, one row per documented status, code and wording."""

from __future__ import annotations

import pytest

from app.providers.classify import ErrorReport, classify, kind_of, report_from_body
from app.providers.errors import ErrorKind


@pytest.mark.parametrize(
    ("status", "message", "codes", "kind"),
    [
        (429, "slow down", (), ErrorKind.RATE_LIMIT),
        (429, "Please reduce the prompt length or try again later", (), ErrorKind.RATE_LIMIT),
        (401, "bad key", (), ErrorKind.AUTH),
        (403, "forbidden", (), ErrorKind.AUTH),
        (402, "Insufficient credits", (), ErrorKind.AUTH),
        (400, "API key not valid", ("API_KEY_INVALID", "INVALID_ARGUMENT"), ErrorKind.AUTH),
        (403, "flagged", ("moderation_flagged",), ErrorKind.CONTENT_FILTER),
        (400, "filtered", ("content_filter",), ErrorKind.CONTENT_FILTER),
        (404, "no such model", (), ErrorKind.NOT_FOUND),
        (410, "model retired", (), ErrorKind.NOT_FOUND),
        (400, "x", ("context_length_exceeded",), ErrorKind.CONTEXT_LENGTH),
        (400, "This model's maximum context length is 4096 tokens", (), ErrorKind.CONTEXT_LENGTH),
        (400, "prompt is too long: 208310 tokens > 200000 maximum", (), ErrorKind.CONTEXT_LENGTH),
        (400, "input length and `max_tokens` exceed context limit", (), ErrorKind.CONTEXT_LENGTH),
        (
            400,
            "The input token count exceeds the maximum number of tokens allowed",
            (),
            ErrorKind.CONTEXT_LENGTH,
        ),
        (400, "the input length exceeds the context length", (), ErrorKind.CONTEXT_LENGTH),
        (400, "the request exceeds the available context size", (), ErrorKind.CONTEXT_LENGTH),
        (413, "prompt is too long", (), ErrorKind.CONTEXT_LENGTH),
        (400, "temperature must be <= 2", (), ErrorKind.INVALID_REQUEST),
        (422, "unprocessable", (), ErrorKind.INVALID_REQUEST),
        (413, "request too large", (), ErrorKind.INVALID_REQUEST),
        (408, "request timeout", (), ErrorKind.TIMEOUT),
        (504, "gateway timeout", (), ErrorKind.TIMEOUT),
        (529, "Overloaded", (), ErrorKind.OVERLOADED),
        (503, "The model is overloaded.", (), ErrorKind.OVERLOADED),
        (503, "try later", ("UNAVAILABLE",), ErrorKind.OVERLOADED),
        (503, "<html>Service Unavailable</html>", (), ErrorKind.SERVER_ERROR),
        (500, "boom", (), ErrorKind.SERVER_ERROR),
        (502, "bad gateway", (), ErrorKind.SERVER_ERROR),
        (418, "teapot", (), ErrorKind.UNKNOWN),
        (429, "You exceeded your current quota", ("insufficient_quota",), ErrorKind.AUTH),
        (400, "Your credit balance is too low", ("billing_error",), ErrorKind.AUTH),
        # no status: an error mid-stream or in a 200 body without a numeric code
        (None, "Overloaded", ("overloaded_error",), ErrorKind.OVERLOADED),
        (None, "x", ("rate_limit_error",), ErrorKind.RATE_LIMIT),
        (None, "x", ("RESOURCE_EXHAUSTED",), ErrorKind.RATE_LIMIT),
        (None, "x", ("api_error",), ErrorKind.SERVER_ERROR),
        (None, "x", ("DEADLINE_EXCEEDED",), ErrorKind.TIMEOUT),
        (None, "x", ("not_found_error",), ErrorKind.NOT_FOUND),
        (None, "x", ("invalid_request_error",), ErrorKind.INVALID_REQUEST),
        (None, "maximum context length is 8192", (), ErrorKind.CONTEXT_LENGTH),
        (None, "Rate limit hit upstream", (), ErrorKind.RATE_LIMIT),
        (None, "something odd", (), ErrorKind.UNKNOWN),
    ],
)
def test_kind_of(status: int | None, message: str, codes: tuple[str, ...], kind: ErrorKind) -> None:
    assert kind_of(ErrorReport(status=status, message=message, codes=codes)) is kind


def test_classify_builds_the_subclass_with_its_facts() -> None:
    report = ErrorReport(
        status=429, message="slow", codes=("rate_limit_exceeded",), retry_after=2.0
    )
    error = classify(report, provider="openai")
    assert (error.kind, error.status_code, error.retry_after, error.provider_code) == (
        "rate_limit",
        429,
        2.0,
        "rate_limit_exceeded",
    )
    assert error.code == "provider_rate_limit"
    assert error.message == "openai 429: slow"


def test_classify_scrubs_secrets_and_shortens() -> None:
    report = ErrorReport(status=401, message="bad key sk-abcdef123456 " + "x" * 1000)
    error = classify(report, provider="openai", secrets=("sk-abcdef123456",))
    assert "sk-abcdef123456" not in error.message
    assert len(error.message) < 400


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"error": "model 'x' not found"}, 404, ErrorReport(404, "model 'x' not found")),
        (
            {"object": "error", "message": "too long", "type": "BadRequestError", "code": 400},
            400,
            ErrorReport(400, "too long", ("BadRequestError",)),
        ),
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            None,
            ErrorReport(None, "Overloaded", ("overloaded_error",)),
        ),
        (
            {"error": {"message": "m", "code": 429}},
            200,
            ErrorReport(429, "m"),
        ),
        (
            {"error": {"message": "m", "code": "429"}},
            200,
            ErrorReport(429, "m", ("429",)),
        ),
        ({"choices": []}, 200, None),
        ([1, 2], 500, None),
        ("text", 500, None),
    ],
)
def test_report_from_body(body: object, status: int | None, expected: ErrorReport | None) -> None:
    assert report_from_body(body, http_status=status) == expected


def test_out_of_credit_is_the_keys_fault_not_a_rate_limit() -> None:
    """OpenAI's insufficient_quota arrives as a 429, but waiting will not help: the key is
    disabled and another key or model takes over, as for any key the provider refuses."""
    openai = report_from_body(
        {"error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}},
        http_status=429,
    )
    anthropic = report_from_body(
        {"type": "error", "error": {"type": "billing_error", "message": "credit too low"}},
        http_status=400,
    )
    assert openai is not None
    assert anthropic is not None
    assert kind_of(openai) is ErrorKind.AUTH
    assert kind_of(anthropic) is ErrorKind.AUTH
