"""The one HTTP layer of every Switchboard client (the Python client and the CLI).

Sends ``Authorization: Bearer <key>`` when given a key and turns the API's error body
``{"error": {"code", "message", "param"?, "line"?}}`` into ``SwitchboardAPIError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from app.errors import SwitchboardError


class SwitchboardAPIError(SwitchboardError):
    """An error the API answered with (or could not answer: ``api_unreachable``, status 503)."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int,
        *,
        param: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message, code=code, param=param, line=line, http_status=status)

    @property
    def status(self) -> int:
        return self.http_status


class HttpApi:
    """An httpx client on the API's base URL; ``request`` raises on any error status."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise SwitchboardAPIError(
                "api_unreachable",
                f"cannot reach the API at {self.base_url}: is `switchboard up` running?",
                503,
            ) from None
        except httpx.TimeoutException:
            raise SwitchboardAPIError(
                "api_timeout", f"the API at {self.base_url} did not answer in time", 503
            ) from None
        if response.status_code >= 400:
            raise error_from(response, path)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def lines(self, path: str, **kwargs: Any) -> Iterator[str]:
        """A streamed body, line by line (JSONL)."""
        try:
            with self._http.stream("GET", path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from(response, path)
                yield from (line for line in response.iter_lines() if line)
        except httpx.ConnectError:
            raise SwitchboardAPIError(
                "api_unreachable", f"cannot reach the API at {self.base_url}", 503
            ) from None


def error_from(response: httpx.Response, path: str) -> SwitchboardAPIError:
    try:
        error = response.json()["error"]
        return SwitchboardAPIError(
            str(error["code"]),
            str(error["message"]),
            response.status_code,
            param=error.get("param"),
            line=error.get("line"),
        )
    except (ValueError, KeyError, TypeError):
        return SwitchboardAPIError(
            "http_error", f"HTTP {response.status_code} from {path}", response.status_code
        )
