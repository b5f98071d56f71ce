"""What every JSON-over-HTTP wire format shares: the parse template, errors and filters.

A concrete adapter says how to build its request and how to read its success body and its
stream's payloads (a ``StreamFold``); this base decides, the same way for all of them, whether
a response is a success at all (status, an ``error`` object in a 200 body, a body that is not
JSON), classifies failures — in a body or inside a stream after its 200 —, attaches rate
limits and turns a content-filter finish into ``ContentFiltered``.

Streams are read incrementally (``stream_reader``: lines in, deltas out); ``parse_stream`` is
that reader fed a whole recorded stream, so both always agree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, ClassVar, Protocol

import httpx

from app.errors import InvalidInput
from app.providers.classify import ErrorReport, classify, report_from_body
from app.providers.errors import (
    ContentFiltered,
    ProviderError,
    ServerFailed,
    UntranslatableRequest,
)
from app.providers.ratelimit_headers import retry_after_from_headers
from app.providers.sse import Framing, SSEDecoder
from app.providers.types import ChatCall, Completion, Delta, RateLimitSnapshot, StreamReader
from app.providers.wire import (
    as_object,
    expected_chunk_shape,
    expected_shape,
    malformed,
    response_json,
    secrets_of,
)


class StreamFold(Protocol):
    """One stream's payloads folded so far, in a format's own terms."""

    def add(self, payload: dict[str, Any]) -> list[Delta]:
        """Take one decoded payload; return the deltas it carries. May raise ``KeyError``,
        ``TypeError``... on a payload of the wrong shape."""
        ...

    def completion(self) -> Completion:
        """Everything so far as a completion."""
        ...

    @property
    def complete(self) -> bool:
        """The provider said the completion is finished (a finish reason, ``done``)."""
        ...


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
    def translate(self, call: ChatCall) -> httpx.Request:
        """The HTTP request for ``call`` in this wire format; ``InvalidInput`` if it has none."""

    @abstractmethod
    def completion_from_body(self, body: Any) -> Completion:
        """Read a decoded success body; may raise ``KeyError``/``TypeError`` on a bad shape."""

    @abstractmethod
    def stream_fold(self) -> StreamFold:
        """A fresh fold for one stream's payloads."""

    def stream_framing(self) -> Framing:
        """How this format frames its stream; server-sent events unless it says otherwise."""
        return SSEDecoder()

    def parse_rate_limits(self, headers: httpx.Headers) -> RateLimitSnapshot | None:
        """Rate-limit headers as a snapshot; formats without such headers return ``None``."""
        return None

    def error_report(self, body: Any, *, http_status: int | None) -> ErrorReport | None:
        """Read an error out of a decoded body (``None`` if it is not one); formats add quirks."""
        return report_from_body(body, http_status=http_status)

    # -- the shared template ---------------------------------------------------------------

    def build_request(self, call: ChatCall) -> httpx.Request:
        """The HTTP request for ``call``; a call this format cannot express raises
        ``UntranslatableRequest`` (an ``InvalidInput`` that is also an ``invalid_request``
        provider failure, so a worker that meets it fails the job instead of crashing)."""
        try:
            return self.translate(call)
        except ProviderError:
            raise
        except InvalidInput as err:
            raise UntranslatableRequest(f"{self.name}: {err.message}", code=err.code) from None

    def stream_reader(self, headers: httpx.Headers | None = None) -> StreamReader:
        """A reader for one stream; ``headers`` (the stream response's) give ``rate_limits``."""
        return _Reader(self, headers)

    def parse_stream(
        self, lines: Iterable[str], *, headers: httpx.Headers | None = None
    ) -> Completion:
        """Aggregate a whole stream into one completion, or raise ``ProviderError``."""
        reader = self.stream_reader(headers)
        for line in lines:
            reader.feed(line)
        return reader.finish()

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


class _Reader:
    """The incremental parse every format shares: framing, in-stream errors, shape checks."""

    __slots__ = ("_adapter", "_ended", "_fold", "_framing", "_headers")

    def __init__(self, adapter: WireAdapter, headers: httpx.Headers | None) -> None:
        self._adapter = adapter
        self._headers = headers
        self._framing = adapter.stream_framing()
        self._fold = adapter.stream_fold()
        self._ended = False

    def feed(self, line: str) -> list[Delta]:
        events = self._framing.feed(line)
        if not events:
            return []
        deltas: list[Delta] = []
        for event in events:
            deltas += self._add(event.data)
        return deltas

    def end(self) -> list[Delta]:
        if self._ended:
            return []
        self._ended = True
        deltas: list[Delta] = []
        for event in self._framing.flush():
            deltas += self._add(event.data)
        return deltas

    def finish(self) -> Completion:
        self.end()
        adapter, completion = self._adapter, self._fold.completion()
        if not self._fold.complete:
            raise adapter.stream_cut(completion)
        headers = self._headers
        rate_limits = None if headers is None else adapter.parse_rate_limits(headers)
        return adapter.finished(replace(completion, rate_limits=rate_limits))

    def _add(self, payload: Any) -> list[Delta]:
        error = self._adapter.stream_error(payload)
        if error is not None:
            error.completion = self._fold.completion()
            raise error
        with expected_chunk_shape(payload):
            return self._fold.add(as_object(payload))
