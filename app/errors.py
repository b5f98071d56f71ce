"""The one root of every error Switchboard raises on purpose.

    SwitchboardError                 code, message, http_status, param
    ├── InvalidInput                 400/422 — the caller's request is wrong
    │   ├── UnknownModel             a model name the registry does not know
    │   └── BatchTooLarge            more requests than one batch may hold
    ├── NotFound                     404 — no such job, batch or model
    ├── Conflict                     409 — e.g. an Idempotency-Key reused with another body
    ├── Unavailable                  503 — a dependency (Postgres, Redis) is down
    ├── InvalidSettings              a SWITCHBOARD_* variable or the catalog does not parse
    ├── Unauthorized / Forbidden     401 / 403 — no or unknown credentials / not allowed
    ├── BudgetExceeded               402 — a budget has no room for the job's worst case
    └── ProviderError                (app.providers.errors) — a classified upstream failure

The API renders all of them as ``{"error": {"code", "message", "param"?, "line"?}}`` through
one handler; the CLI prints ``error: <code>: <message>`` and exits non-zero.
"""

from __future__ import annotations

from typing import Any


class SwitchboardError(Exception):
    """Base of every deliberate error; carries a stable machine-readable ``code``."""

    code: str = "error"
    http_status: int = 500

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        line: int | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        self.param = param
        self.line = line

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.param is not None:
            body["param"] = self.param
        if self.line is not None:
            body["line"] = self.line
        return body


class InvalidInput(SwitchboardError):
    code = "invalid_request"
    http_status = 400


class InvalidSettings(SwitchboardError):
    """The gateway's own configuration is wrong (an operator's mistake, not a caller's)."""

    code = "invalid_settings"


class UnknownModel(InvalidInput):
    code = "unknown_model"
    http_status = 400


class BatchTooLarge(InvalidInput):
    code = "batch_too_large"
    http_status = 413


class NotFound(SwitchboardError):
    code = "not_found"
    http_status = 404


class Conflict(SwitchboardError):
    code = "conflict"
    http_status = 409


class Unavailable(SwitchboardError):
    code = "unavailable"
    http_status = 503


class Unauthorized(SwitchboardError):
    """401 — no credentials, or ones this gateway does not know."""

    code = "unauthorized"
    http_status = 401


class Forbidden(SwitchboardError):
    """403 — known credentials that may not do this (a tenant key on an admin endpoint)."""

    code = "forbidden"
    http_status = 403


class BudgetExceeded(SwitchboardError):
    """402 — the job's worst-case cost does not fit what is left of a budget."""

    code = "budget_exceeded"
    http_status = 402
