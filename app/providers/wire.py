"""Bytes on the wire to Python and back, shared by every wire format.

Requests are built here so that every adapter encodes JSON the same way and merges headers in
the same order. Responses are decoded here so that a body that is not JSON, or not the shape
a format promises, always becomes the same ``ServerFailed("malformed response body: ...")``
with a short excerpt from which every secret the request carried has been removed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import orjson

from app.errors import InvalidInput
from app.providers.errors import InvalidProviderRequest, ServerFailed

EXCERPT_CHARS = 160
MALFORMED = "malformed response body"

# Request headers whose values are credentials; their values are scrubbed from any text that
# is echoed back into an error message.
SECRET_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key")


def join_url(base_url: str, path: str) -> str:
    """``base_url`` with ``path`` appended, whatever slashes either side carries."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def bearer(api_key: str | None) -> dict[str, str]:
    """The ``Authorization`` header for a key, or nothing for keyless local servers."""
    return {} if api_key is None else {"authorization": f"Bearer {api_key}"}


def json_request(
    url: str,
    body: Mapping[str, Any],
    *,
    headers: Mapping[str, str],
    extra_headers: Mapping[str, str],
) -> httpx.Request:
    """A ``POST`` of ``body`` as JSON; ``extra_headers`` are merged last so callers can override."""
    merged = {"content-type": "application/json"}
    merged.update(headers)
    merged.update(extra_headers)
    try:
        content = orjson.dumps(body)
    except orjson.JSONEncodeError as exc:
        raise InvalidInput(f"the request is not JSON-serialisable: {exc}") from None
    try:
        return httpx.Request("POST", url, headers=merged, content=content)
    except (httpx.InvalidURL, UnicodeEncodeError):
        # Not chained: the encoding error quotes the offending character, maybe of a key.
        raise InvalidProviderRequest(
            "the provider request cannot be encoded: check the base URL and that the API key "
            "and extra headers are plain ASCII"
        ) from None


def compact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` without the ones that are unset, so only what the caller chose is sent."""
    return {key: value for key, value in fields.items() if value is not None}


def dumps_text(value: Any) -> str:
    """JSON text for a tool call's arguments, as the OpenAI shape carries them."""
    return orjson.dumps(value).decode()


def decode_json(text: str | bytes) -> Any:
    """Parse JSON text; raises ``ValueError`` when it is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None


def response_json(response: httpx.Response) -> Any | None:
    """The response body as JSON, or ``None`` when the body is not JSON at all."""
    try:
        return decode_json(response.content)
    except ValueError:
        return None


def secrets_of(response: httpx.Response) -> tuple[str, ...]:
    """The credentials the request behind ``response`` carried (to keep out of messages)."""
    try:
        request = response.request
    except RuntimeError:  # a Response built without a request, e.g. in a replay
        return ()
    return request_secrets(request)


def request_secrets(request: httpx.Request) -> tuple[str, ...]:
    """The credential header values of ``request``, and their bare tokens."""
    found: list[str] = []
    for name in SECRET_HEADERS:
        value = request.headers.get(name)
        if value:
            found.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in ("bearer", "basic", "token"):
                found.append(token)
    return tuple(found)


def safe_excerpt(text: str, secrets: tuple[str, ...] = (), limit: int = EXCERPT_CHARS) -> str:
    """A short, single-line piece of ``text`` with ``secrets`` removed, for error messages."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:  # a 1-3 character "secret" would shred the message for nothing
            text = text.replace(secret, "[redacted]")
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def malformed(
    text: str, secrets: tuple[str, ...] = (), *, status_code: int | None = None
) -> ServerFailed:
    """The error for a body that is not what the wire format promises."""
    excerpt = safe_excerpt(text, secrets)
    message = f"{MALFORMED}: {excerpt}" if excerpt else f"{MALFORMED}: (empty)"
    return ServerFailed(message, status_code=status_code)


# What indexing into JSON of the wrong shape raises (ValueError: int("x"), bad nested JSON).
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError)


@contextmanager
def expected_shape(response: httpx.Response) -> Iterator[None]:
    """Turn a lookup that fails on an unexpected body shape into ``malformed(...)``.

    Parsers index straight into the decoded JSON (the readable way to follow a documented
    shape); a missing key, a wrong type or an empty list lands here instead of escaping as a
    ``KeyError`` from deep inside an adapter.
    """
    try:
        yield
    except _SHAPE_ERRORS as exc:
        raise malformed(
            response.text, secrets_of(response), status_code=response.status_code
        ) from exc


@contextmanager
def expected_chunk_shape(payload: Any) -> Iterator[None]:
    """``expected_shape`` for one decoded stream payload (there is no response to quote)."""
    try:
        yield
    except _SHAPE_ERRORS as exc:
        raise malformed(dumps_text(payload)) from exc


def text_or_none(value: Any) -> str | None:
    """A text field that may be absent; anything but a string or null is a shape error."""
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"expected text, got {type(value).__name__}")


def token_count(value: Any) -> int:
    """A token counter that may be absent (0); anything but a non-negative int is a shape error."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"expected a token count, got {value!r}")
    return value


def as_object(value: Any) -> dict[str, Any]:
    """A JSON object where the format requires one."""
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def as_list(value: Any) -> list[Any]:
    """A JSON array where the format requires one; absent means empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"expected an array, got {type(value).__name__}")
    return value
