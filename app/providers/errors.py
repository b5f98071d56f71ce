"""The error taxonomy every provider failure is classified into.

    SwitchboardError (app.errors)
    └── ProviderError            .kind, .retry_after, .status_code, .provider_code
        ├── RateLimited          rate_limit      429s; honour ``retry_after``
        ├── ContextLengthExceeded context_length prompt + output do not fit the window
        ├── AuthFailed           auth            bad, revoked or unpermitted key
        ├── Overloaded           overloaded      529, 503 "overloaded", capacity errors
        ├── ServerFailed         server_error    5xx, refused connections, garbage bodies
        ├── TimedOut             timeout         no answer within the attempt timeout
        ├── ContentFiltered      content_filter  refused by moderation / safety
        ├── InvalidProviderRequest invalid_request the request itself is wrong (caller's fault)
        │   └── UntranslatableRequest   …that this wire format cannot express (also InvalidInput)
        ├── ModelNotFound        not_found       unknown or retired model
        ├── ResponseRejected     quality         an answer the request's validators refused
        └── UnclassifiedProviderError unknown    anything else; retried conservatively

Adapters raise these from ``parse_response``; the transport raises ``TimedOut`` and
``ServerFailed`` for network failures. Nothing outside ``app.providers`` sees an httpx error.
``ResponseRejected`` is raised after a call that succeeded, by ``app.validation``: the answer
came (and is billed) but is not what the caller asked for.
"""

# The taxonomy's class names are a published contract (they read as outcomes, not "...Error").

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from app.errors import InvalidInput, SwitchboardError

if TYPE_CHECKING:
    from app.providers.types import Completion


class ErrorKind(StrEnum):
    RATE_LIMIT = "rate_limit"
    CONTEXT_LENGTH = "context_length"
    AUTH = "auth"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONTENT_FILTER = "content_filter"
    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    QUALITY = "quality"
    UNKNOWN = "unknown"


class ProviderError(SwitchboardError):
    """A provider call failed; ``kind`` says how, in the gateway's taxonomy."""

    kind: ClassVar[str] = ErrorKind.UNKNOWN.value
    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        provider_code: str | None = None,
        completion: Completion | None = None,
    ) -> None:
        super().__init__(message, code=f"provider_{self.kind}")
        self.status_code = status_code
        self.retry_after = retry_after
        self.provider_code = provider_code
        # What the provider did return alongside the failure (a filtered answer, a stream cut
        # by an error): its usage is billed even though the call failed.
        self.completion = completion

    @property
    def error_kind(self) -> ErrorKind:
        return ErrorKind(self.kind)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind!r}, status_code={self.status_code!r}, "
            f"retry_after={self.retry_after!r}, message={self.message!r})"
        )


class RateLimited(ProviderError):
    kind = ErrorKind.RATE_LIMIT.value


class ContextLengthExceeded(ProviderError):
    kind = ErrorKind.CONTEXT_LENGTH.value


class AuthFailed(ProviderError):
    kind = ErrorKind.AUTH.value


class Overloaded(ProviderError):
    kind = ErrorKind.OVERLOADED.value


class ServerFailed(ProviderError):
    kind = ErrorKind.SERVER_ERROR.value


class TimedOut(ProviderError):
    kind = ErrorKind.TIMEOUT.value


class ContentFiltered(ProviderError):
    kind = ErrorKind.CONTENT_FILTER.value


class InvalidProviderRequest(ProviderError):
    kind = ErrorKind.INVALID_REQUEST.value


class UntranslatableRequest(InvalidProviderRequest, InvalidInput):
    """A call the adapter cannot put in its wire format (a content part or tool the format has
    no equivalent for, tool arguments that are not JSON).

    To a caller building requests it is ``InvalidInput`` (a 400 with ``code``); to a worker it
    is a provider failure of kind ``invalid_request``, so the job fails at once, recorded,
    instead of escaping the attempt.
    """

    http_status = 400

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class ModelNotFound(ProviderError):
    kind = ErrorKind.NOT_FOUND.value


class ResponseRejected(ProviderError):
    kind = ErrorKind.QUALITY.value


class UnclassifiedProviderError(ProviderError):
    kind = ErrorKind.UNKNOWN.value


ERROR_BY_KIND: dict[ErrorKind, type[ProviderError]] = {
    ErrorKind(cls.kind): cls
    for cls in (
        RateLimited,
        ContextLengthExceeded,
        AuthFailed,
        Overloaded,
        ServerFailed,
        TimedOut,
        ContentFiltered,
        InvalidProviderRequest,
        ModelNotFound,
        ResponseRejected,
        UnclassifiedProviderError,
    )
}
