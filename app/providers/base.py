"""What every JSON-over-HTTP wire format shares: the parse template, errors and filters.

A concrete adapter says how to build its request and how to read its success body and stream;
this base decides, the same way for all of them, whether a response is a success at all
(status, an ``error`` object in a 200 body, a body that is not JSON), classifies failures,
attaches rate limits and turns a content-filter finish into ``ContentFiltered``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, ClassVar

import httpx

from app.providers.classify import ErrorReport, classify, report_from_body
from app.providers.errors import ContentFiltered, ProviderError, ServerFailed
from app.providers.ratelimit_headers import retry_after_from_headers
from app.providers.types import ChatCall, Completion, RateLimitSnapshot
from app.providers.wire import expected_shape, malformed, response_json, secrets_of


class WireAdapter(ABC):
    """Base of the adapters: sans-I/O, stateless, one instance per wire-format name."""

    # Raw finish reasons that mean the provider withheld the answer.
    filtered_finish_reasons: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # -- what each format supplies -------------------------------------------------------

    @abstractmethod
    def build_request(self, call: ChatCall) -> httpx.Request:
        """The HTTP request for ``call`` in this wire format."""

    @abstractmethod
    def completion_from_body(self, body: Any) -> Completion:
        """Read a decoded success body; may raise ``KeyError``/``TypeError`` on a bad shape."""

    @abstractmethod
    def parse_stream(
        self, lines: Iterable[str], *, headers: httpx.Headers | None = None
    ) -> Completion:
        """Aggregate a whole stream into one completion, or raise ``ProviderError``."""

    def parse_rate_limits(self, headers: httpx.Headers) -> RateLimitSnapshot | None:
        """Rate-limit headers as a snapshot; formats without such headers return ``None``."""
        return None

    def error_report(self, body: Any, *, http_status: int | None) -> ErrorReport | None:
        """Read an error out of a decoded body (``None`` if it is not one); formats add quirks."""
        return report_from_body(body, http_status=http_status)

    # -- the shared template ---------------------------------------------------------------

    def parse_response(self, response: httpx.Response) -> Completion:
        """Return the completion in ``response`` or raise the classified ``ProviderError``."""
        body = self.success_body(response)
        with expected_shape(response):
            completion = self.completion_from_body(body)
        return self.finished(
            replace(completion, rate_limits=self.parse_rate_limits(response.headers))
        )

    def success_body(self, response: httpx.Response) -> Any:
        """The decoded body of a successful response; raises the classified error otherwise."""
        body = response_json(response)
        report = None if body is None else self.error_report(body, http_status=response.status_code)
        if response.is_success and report is None:
            if body is None:
                raise malformed(
                    response.text, secrets_of(response), status_code=response.status_code
                )
            return body
        return self._raise_for(response, report)

    def finished(self, completion: Completion) -> Completion:
        """``completion``, unless its finish reason says the provider's filter withheld it."""
        reason = completion.finish_reason
        if reason is not None and reason in self.filtered_finish_reasons:
            raise ContentFiltered(
                f"{self.name}: the provider's content filter withheld the completion "
                f"(finish reason {reason})",
                provider_code=reason,
                completion=completion,
            )
        return completion

    def stream_error(self, payload: Any) -> ProviderError | None:
        """The classified error an in-stream payload carries, if it is an error."""
        report = self.error_report(payload, http_status=None)
        return None if report is None else classify(report, provider=self.name)

    def stream_cut(self, completion: Completion) -> ServerFailed:
        """The error for a stream that ended before the provider said it was finished."""
        return ServerFailed(
            f"{self.name}: stream ended before the provider finished the completion",
            completion=completion,
        )

    def _raise_for(self, response: httpx.Response, report: ErrorReport | None) -> Any:
        if report is None:  # an error status with a body we cannot read (HTML, text, empty)
            report = ErrorReport(
                status=response.status_code,
                message=response.text or response.reason_phrase,
            )
        header_wait = retry_after_from_headers(response.headers)
        if header_wait is not None:  # the header is the provider's binding answer
            report = replace(report, retry_after=header_wait)
        raise classify(report, provider=self.name, secrets=secrets_of(response))
