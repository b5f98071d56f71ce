"""``switchboard flower``: Flower, never without a login.

The login is, in order: Flower's own ``FLOWER_BASIC_AUTH`` (``user:password[,user:password]``);
``SWITCHBOARD_FLOWER_USER`` / ``SWITCHBOARD_FLOWER_PASSWORD``; else ``SWITCHBOARD_FLOWER_USER``
(``admin``) with a password made once in ``<data_dir>/flower.password`` (mode 0600), which
``switchboard up`` and ``demo`` print with Flower's URL. Flower gets it through its
environment, never its command line, so ``ps`` does not show it.

Flower lists a worker once it hears the worker's events: heartbeats, which every pool sends,
are enough for the workers page; task events (``--task-events``, or Flower's periodic
``enable_events`` broadcast) fill the tasks pages. A stack that runs its workers without task
events starts Flower with ``--no-events`` so that Flower does not turn them back on.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings, get_settings
from app.embedded import resolve_urls
from app.errors import InvalidInput, Unavailable
from app.registry.secrets import folder_secret

PASSWORD_FILE = "flower.password"  # noqa: S105 - a file name, not a password
FLOWER_AUTH_ENV = "FLOWER_BASIC_AUTH"


@dataclass(frozen=True)
class FlowerLogin:
    """What Flower's basic auth accepts, and where it came from (for telling the operator)."""

    basic_auth: str  # Flower's FLOWER_BASIC_AUTH value: user:password[,user:password]
    user: str
    source: str  # FLOWER_BASIC_AUTH, SWITCHBOARD_FLOWER_PASSWORD, or the password file's path
    generated: bool  # the password is the data folder's, made by us

    @property
    def password(self) -> str:
        return self.basic_auth.split(",")[0].split(":", 1)[1]

    def describe(self) -> str:
        """One line for ``up`` and ``demo``: the password only when we made it (an operator
        who configured one knows it, and it must not land in a terminal log needlessly)."""
        if self.source == FLOWER_AUTH_ENV:
            return f"login from {FLOWER_AUTH_ENV}"
        if self.generated:
            return f"user {self.user}, password {self.password} (kept in {self.source})"
        return f"user {self.user}, password from {self.source}"


def flower_login(settings: Settings, *, create: bool = False) -> FlowerLogin | None:
    """Flower's login from the configuration, else the data folder's (made if ``create``)."""
    configured = os.environ.get(FLOWER_AUTH_ENV, "").strip()
    if configured:
        _check_basic_auth(configured)
        user = configured.split(",")[0].split(":", 1)[0]
        return FlowerLogin(configured, user, FLOWER_AUTH_ENV, generated=False)
    user = settings.flower_user
    _check_user(user)
    if settings.flower_password is not None:
        password = settings.flower_password.get_secret_value()
        _check_password(password)
        return FlowerLogin(
            f"{user}:{password}", user, "SWITCHBOARD_FLOWER_PASSWORD", generated=False
        )
    path = Path(settings.data_dir).resolve() / PASSWORD_FILE
    kept = folder_secret(path, lambda: secrets.token_urlsafe(18), create=create)
    if kept is None:
        return None
    return FlowerLogin(f"{user}:{kept}", user, str(path), generated=True)


def _check_basic_auth(value: str) -> None:
    for entry in value.split(","):
        user, sep, password = entry.partition(":")
        if not (user and sep and password):
            raise InvalidInput(
                f"{FLOWER_AUTH_ENV} must be user:password pairs separated by commas",
                code="invalid_flower_login",
                param=FLOWER_AUTH_ENV,
            )


def _check_user(user: str) -> None:
    if not user or any(c in user for c in ":,") or user != user.strip():
        raise InvalidInput(
            "SWITCHBOARD_FLOWER_USER must be a non-empty name without ':', ',' or spaces around it",
            code="invalid_flower_login",
            param="SWITCHBOARD_FLOWER_USER",
        )


def _check_password(password: str) -> None:
    # Flower splits its list of logins on commas: a comma would cut the password in two.
    if not password or "," in password:
        raise InvalidInput(
            "SWITCHBOARD_FLOWER_PASSWORD must be non-empty and contain no ','",
            code="invalid_flower_login",
            param="SWITCHBOARD_FLOWER_PASSWORD",
        )


def run_flower(*, port: int, address: str, events: bool, loglevel: str) -> None:
    """Serve Flower for this deployment's broker, behind its login."""
    settings = get_settings()
    urls = resolve_urls(settings.database_url, settings.redis_url, settings.data_dir)
    if urls is None:
        raise Unavailable(
            "no broker: set DATABASE_URL and REDIS_URL, or start `switchboard up` first"
        )
    login = flower_login(settings, create=True)
    assert login is not None  # create=True always yields one
    os.environ[FLOWER_AUTH_ENV] = login.basic_auth
    # The Celery app reads the broker from these when it is first imported.
    os.environ["DATABASE_URL"] = urls.database_url
    os.environ["REDIS_URL"] = urls.redis_url
    get_settings.cache_clear()

    from workers.celery_app import celery_app

    argv = ["flower", f"--port={port}", f"--address={address}", f"--logging={loglevel}"]
    if not events:
        argv.append("--enable_events=False")
    celery_app.start(argv)
