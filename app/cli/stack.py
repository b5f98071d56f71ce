"""Running the whole stack as child processes: simulator, API, worker pools, Flower.

``switchboard up``, ``switchboard demo``, the benchmarks and the end-to-end tests all start
Switchboard the same way, through ``Stack``. Every child writes to its own log file under
``<data_dir>/logs/`` and gets the service URLs through its environment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.cli import roles
from app.cli.flower import FlowerLogin, flower_login
from app.config import Settings
from app.embedded import EmbeddedStack, ServiceUrls, free_port, to_sqlalchemy_url
from app.errors import Unavailable
from app.registry.secrets import master_key
from app.tenants.keys import admin_key


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    metrics_url: str | None = None  # a worker's own Prometheus metrics

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL the child and its process group, as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@dataclass
class StackOptions:
    data_dir: Path
    database_url: str | None = None
    redis_url: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int | None = 8000  # None: don't start the API
    flower_port: int | None = 5555  # None: don't start Flower
    simulator: bool = True
    simulator_port: int | None = None  # None: pick a free port
    simulator_config: Path | None = None
    providers: Sequence[str] = ()
    concurrency: int = 32
    pool: str = "threads"
    worker_processes: int = 1
    events: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_or_free(host: str, wanted: int | None) -> int | None:
    if wanted is None:
        return None
    return wanted if wanted and port_free(host, wanted) else free_port(host)


class Stack:
    """The services and processes of one Switchboard deployment on this machine."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.embedded: EmbeddedStack | None = None
        self.urls: ServiceUrls | None = None
        self.children: list[Child] = []
        self.workers: dict[str, list[Child]] = {}
        self.simulator_url: str | None = None
        self.api_url: str | None = None
        self.flower_url: str | None = None
        self.log_dir = options.data_dir.resolve() / "logs"
        self._tag = uuid.uuid4().hex[:6]

    # -- services ---------------------------------------------------------------------
    def start_services(self) -> ServiceUrls:
        """External URLs when both are given, else an embedded PostgreSQL and Redis."""
        o = self.options
        if o.database_url and o.redis_url:
            self.urls = ServiceUrls(to_sqlalchemy_url(o.database_url), o.redis_url)
            return self.urls
        self.embedded = EmbeddedStack(o.data_dir)
        embedded = self.embedded.start()
        self.urls = ServiceUrls(
            to_sqlalchemy_url(o.database_url) if o.database_url else embedded.database_url,
            o.redis_url or embedded.redis_url,
        )
        return self.urls

    def env(self) -> dict[str, str]:
        assert self.urls is not None
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.urls.database_url,
            REDIS_URL=self.urls.redis_url,
            SWITCHBOARD_DATA_DIR=str(self.options.data_dir.resolve()),
            PYTHONUNBUFFERED="1",
        )
        if self.simulator_url:
            env["SWITCHBOARD_SIMULATOR_URL"] = self.simulator_url
        if self.embedded is not None and "SWITCHBOARD_SECRET_KEY" not in env:
            # Every process of an embedded stack seals and opens keys with its folder's key.
            key = master_key(Settings(data_dir=self.options.data_dir), create=True)
            assert key is not None
            env["SWITCHBOARD_SECRET_KEY"] = key
        env["SWITCHBOARD_ADMIN_KEY"] = self.admin_key
        env.update(self.options.extra_env)
        return env

    @property
    def admin_key(self) -> str:
        """The key the stack's API takes as the admin's: ``SWITCHBOARD_ADMIN_KEY``, else one
        kept in the data folder (made on first start)."""
        key = admin_key(Settings(data_dir=self.options.data_dir), create=True)
        assert key is not None
        return key

    @property
    def flower_login(self) -> FlowerLogin:
        """Flower's login: configured, else the data folder's (made on first start)."""
        login = flower_login(Settings(data_dir=self.options.data_dir), create=True)
        assert login is not None
        return login

    # -- processes --------------------------------------------------------------------
    def spawn(self, name: str, argv: list[str]) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env(),
                start_new_session=True,
            )
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def start_simulator(self) -> str:
        port = self.options.simulator_port or free_port()
        command = roles.simulator(host="127.0.0.1", port=port, config=self.options.simulator_config)
        child = self.spawn("simulator", command.argv())
        self.simulator_url = f"http://127.0.0.1:{port}"
        wait_http(f"{self.simulator_url}/_health", child, what="the provider simulator")
        return self.simulator_url

    def start_api(self) -> str:
        o = self.options
        port = port_or_free(o.api_host, o.api_port)
        assert port is not None
        child = self.spawn("api", roles.api(host=o.api_host, port=port, log_level="warning").argv())
        self.api_url = f"http://{o.api_host}:{port}"
        wait_http(f"{self.api_url}/readyz", child, what="the API")
        return self.api_url

    def start_workers(
        self, provider: str, processes: int | None = None, concurrency: int | None = None
    ) -> list[Child]:
        o = self.options
        started = []
        for n in range(processes or o.worker_processes):
            name = f"worker-{provider}-{n}"
            command = roles.worker(
                provider,
                concurrency=concurrency or o.concurrency,
                pool=o.pool,
                name=f"{provider}.{self._tag}{n}",
                events=o.events,
                loglevel="WARNING",
            )
            argv, metrics_url = self._with_metrics(command.argv())
            child = self.spawn(name, argv)
            child.metrics_url = metrics_url
            started.append(child)
        self.workers.setdefault(provider, []).extend(started)
        return started

    def _with_metrics(self, argv: list[str]) -> tuple[list[str], str]:
        """A worker's command serving its metrics on a free port of the API's interface."""
        host = self.options.api_host
        port = free_port(host)
        argv = [*argv, "--metrics-port", str(port), "--metrics-host", host]
        return argv, f"http://{host}:{port}/metrics"

    def start_webhook_workers(self, concurrency: int = 8) -> Child:
        """The webhook delivery pool (one process: deliveries are few and mostly waiting)."""
        name = f"webhooks.{self._tag}0"
        command = roles.webhook_worker(concurrency=concurrency, name=name, loglevel="WARNING")
        argv, metrics_url = self._with_metrics(command.argv())
        child = self.spawn("worker-webhooks-0", argv)
        child.metrics_url = metrics_url
        self.workers.setdefault("webhooks", []).append(child)
        return child

    def restart_workers(self, provider: str) -> None:
        """Replace a provider's pools with fresh processes (e.g. after changing its limits)."""
        old = self.workers.pop(provider, [])
        for child in old:
            child.stop()
            self.children.remove(child)
        self.start_workers(provider, processes=len(old) or None)
        self.wait_for_workers()

    def start_beat(self) -> Child:
        """Celery beat: schedules the reconciler."""
        schedule = self.options.data_dir.resolve() / "beat-schedule"
        return self.spawn("beat", roles.beat(schedule=schedule, loglevel="WARNING").argv())

    def start_flower(self) -> str | None:
        """Flower behind its login (see ``flower_login``), seeing the workers' events; with
        ``events=False`` it leaves the workers' task events off."""
        o = self.options
        port = port_or_free(o.api_host, o.flower_port)
        if port is None:
            return None
        # Made here, before Flower looks in the data folder, so that both have one password.
        flower_login(Settings(data_dir=o.data_dir), create=True)
        command = roles.flower(port=port, address=o.api_host, events=o.events, loglevel="warning")
        child = self.spawn("flower", command.argv())
        self.flower_url = f"http://{o.api_host}:{port}"
        wait_http(f"{self.flower_url}/healthcheck", child, what="Flower", timeout=60)
        return self.flower_url

    def wait_for_workers(self, timeout: float = 60.0) -> None:
        """Until every worker process answers a Celery ping (it is then consuming)."""
        from workers.celery_app import create_celery_app

        assert self.urls is not None
        expected = {
            f"{p}.{self._tag}{n}" for p, kids in self.workers.items() for n in range(len(kids))
        }
        app = create_celery_app(self.urls.redis_url)
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        try:
            while time.monotonic() < deadline:
                for child in (c for kids in self.workers.values() for c in kids):
                    if not child.alive():
                        raise Unavailable(f"{child.name} exited:\n{child.tail()}")
                replies = app.control.ping(timeout=0.5) or []
                seen = {name.split("@")[0] for reply in replies for name in reply}
                if expected <= seen:
                    return
        finally:
            app.close()
        raise Unavailable(f"workers {sorted(expected - seen)} did not come up in {timeout:.0f}s")

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        self.workers.clear()
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


def wait_http(
    url: str,
    child: Child | None,
    *,
    what: str,
    timeout: float = 30.0,
    ok: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise Unavailable(f"{what} exited while starting:\n{child.tail()}")
        try:
            if ok(httpx.get(url, timeout=1.0)):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    tail = f"\n{child.tail()}" if child is not None else ""
    raise Unavailable(f"{what} did not answer at {url} within {timeout:.0f}s{tail}")
