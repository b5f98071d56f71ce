"""The command line of every Switchboard process, in one place.

``Stack`` runs these for ``switchboard up``, the demo, the benchmarks and the tests, as children
of its own interpreter (``python -m app.cli …``); ``docker-compose.yml`` runs the same arguments
through the image's console scripts (``switchboard …``). ``tests/ops`` holds the compose file to
these functions and starts its commands as they are written there, so the two cannot drift.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CELERY_APP = "workers.celery_app:celery_app"
ASGI_APP = "app.main:app"

Program = Literal["switchboard", "uvicorn", "celery"]
# The module each console script runs, for starting it without the script on PATH.
MODULES: dict[Program, str] = {"switchboard": "app.cli", "uvicorn": "uvicorn", "celery": "celery"}


@dataclass(frozen=True)
class Command:
    """A program and its arguments, runnable as a child process or by a container."""

    program: Program
    args: tuple[str, ...]

    def argv(self, python: str | None = None) -> list[str]:
        """As a child of an interpreter (this one by default)."""
        return [python or sys.executable, "-m", MODULES[self.program], *self.args]

    def script(self) -> list[str]:
        """As a container runs it: the console script the image installs."""
        return [self.program, *self.args]


def migrate() -> Command:
    return Command("switchboard", ("migrate",))


def simulator(*, host: str, port: int, config: Path | None = None) -> Command:
    args = ["simulate", "--host", host, "--port", str(port)]
    if config is not None:
        args += ["--config", str(config)]
    return Command("switchboard", tuple(args))


def api(*, host: str, port: int, log_level: str) -> Command:
    args = (ASGI_APP, "--host", host, "--port", str(port), "--no-access-log")
    return Command("uvicorn", (*args, "--log-level", log_level))


def worker(
    provider: str,
    *,
    concurrency: int,
    pool: str = "threads",
    name: str | None = None,
    events: bool = True,
    loglevel: str,
) -> Command:
    """A provider's pool; without ``name`` its Celery node is ``<provider>@<host>``."""
    args = ["worker", "--provider", provider, "--concurrency", str(concurrency), "--pool", pool]
    if name is not None:
        args += ["--name", name]
    args += ["--loglevel", loglevel]
    if not events:
        args.append("--no-events")
    return Command("switchboard", tuple(args))


def webhook_worker(*, concurrency: int, name: str | None = None, loglevel: str) -> Command:
    """The webhook delivery pool; without ``name`` its node is ``webhooks@<host>``."""
    args = ["webhooks", "worker", "--concurrency", str(concurrency)]
    if name is not None:
        args += ["--name", name]
    return Command("switchboard", (*args, "--loglevel", loglevel))


def beat(*, schedule: Path | str, loglevel: str) -> Command:
    """Celery beat: the reconciler, rollups and the webhook sweep (run exactly one)."""
    args = ("-A", CELERY_APP, "beat", "--schedule", str(schedule), "--loglevel", loglevel)
    return Command("celery", args)


def flower(*, port: int, address: str, events: bool = True, loglevel: str) -> Command:
    args = ["flower", "--port", str(port), "--address", address, "--loglevel", loglevel]
    if not events:
        args.append("--no-events")
    return Command("switchboard", tuple(args))
