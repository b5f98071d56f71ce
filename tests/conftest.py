"""Shared fixtures: a real stack — embedded PostgreSQL and Redis, the provider simulator, and
(for end-to-end tests) real Celery worker processes. Nothing here is mocked.

Set SWITCHBOARD_TEST_DATABASE_URL and SWITCHBOARD_TEST_REDIS_URL to run against existing
services instead of the embedded ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import redis
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from playwright.sync_api import Browser

from app.bench.common import FAST_RECOVERY_ENV
from app.cli.stack import Stack, StackOptions
from app.config import Settings
from app.db.engine import make_engine, make_sessionmaker
from app.db.migrate import migrate
from app.embedded import EmbeddedRedis
from app.simulator.config import default_config
from app.simulator.control import SimulatorControl

TERMINAL = ("succeeded", "failed", "cancelled")
# Webhooks: receivers on 127.0.0.1 allowed, and retries in fractions of a second.
WEBHOOK_TEST_ENV = {
    "SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE": "true",
    "SWITCHBOARD_WEBHOOK_RETRY_BASE_S": "0.2",
    "SWITCHBOARD_WEBHOOK_RETRY_FACTOR": "2",
    "SWITCHBOARD_WEBHOOK_RETRY_CAP_S": "1",
    "SWITCHBOARD_WEBHOOK_MAX_ATTEMPTS": "4",
    "SWITCHBOARD_WEBHOOK_SWEEP_INTERVAL_S": "0.3",
}
# The semantic cache embeds prompts with the simulator's model, 16-dimensional: its vectors
# are random per text, and in 16 dimensions two texts are measurably similar (tests/cache).
CACHE_TEST_ENV = {
    "SWITCHBOARD_CACHE_EMBEDDING_MODEL": "sim-embed-small",
    "SWITCHBOARD_CACHE_EMBEDDING_DIMENSIONS": "16",
}
TEST_WORKER_ENV = {**FAST_RECOVERY_ENV, **WEBHOOK_TEST_ENV, **CACHE_TEST_ENV}


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """Services, the simulator and a migrated registry; workers come with ``workers``."""
    # Not pytest's tmp_path: that is private to root, and PostgreSQL runs as its own user.
    data_dir = Path(tempfile.mkdtemp(prefix="switchboard-test-"))
    data_dir.chmod(0o755)
    st = Stack(
        StackOptions(
            data_dir=data_dir,
            database_url=os.environ.get("SWITCHBOARD_TEST_DATABASE_URL"),
            redis_url=os.environ.get("SWITCHBOARD_TEST_REDIS_URL"),
            api_port=None,
            flower_port=None,
            concurrency=8,
            events=False,
            extra_env=TEST_WORKER_ENV,
        )
    )
    try:
        urls = st.start_services()
        simulator_url = st.start_simulator()
        migrate(urls.database_url, simulator_url=simulator_url)
        yield st
    finally:
        st.stop()
        if os.environ.get("SWITCHBOARD_KEEP_TEST_DATA"):
            print(f"\nkept the test stack's data and logs in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def lone_redis_url() -> Iterator[str]:
    """A Redis of its own, for tests that need nothing else (no PostgreSQL, no simulator)."""
    directory = Path(tempfile.mkdtemp(prefix="switchboard-redis-"))
    server = EmbeddedRedis(directory)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(stack: Stack) -> Settings:
    assert stack.urls is not None
    return Settings(
        database_url=stack.urls.database_url,
        redis_url=stack.urls.redis_url,
        simulator_url=stack.simulator_url,
        registry_refresh_s=0.5,
    )


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    assert settings.database_url is not None
    eng = make_engine(settings.database_url, pool_size=4, application_name="switchboard-tests")
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with make_sessionmaker(engine)() as session:
        yield session


@pytest.fixture(scope="session")
def redis_client(settings: Settings) -> Iterator[redis.Redis]:
    assert settings.redis_url is not None
    client = redis.Redis.from_url(settings.redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def api_url(stack: Stack) -> str:
    """The API as a real uvicorn process on the test stack's database and broker."""
    stack.options.api_port = 0
    url = stack.start_api()
    # The CLI, run in this process by the tests, calls the test API as the operator.
    os.environ["SWITCHBOARD_API_KEY"] = stack.admin_key
    return url


@pytest.fixture(scope="session")
def admin_key(stack: Stack) -> str:
    return stack.admin_key


@pytest.fixture(scope="session")
def api(api_url: str, admin_key: str) -> Iterator[httpx.Client]:
    """The API as the operator (the admin key), acting for the ``default`` tenant."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=api_url, timeout=60, headers=headers) as client:
        yield client


@pytest.fixture(scope="session")
def anonymous(api_url: str) -> Iterator[httpx.Client]:
    """The API with no credentials at all."""
    with httpx.Client(base_url=api_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def workers(stack: Stack) -> Stack:
    """One worker pool (a real Celery process) per simulated provider used by the tests."""
    for provider in ("sim-openai", "sim-anthropic"):
        stack.start_workers(provider)
    stack.start_beat()
    stack.wait_for_workers()
    return stack


@pytest.fixture
def new_tenant(api: httpx.Client, api_url: str) -> Iterator[Callable[[], httpx.Client]]:
    """Make a tenant through the API, as the admin would, and return a client that calls
    with the tenant's own key (``client.tenant_id`` names it)."""
    clients: list[httpx.Client] = []

    def make() -> httpx.Client:
        tenant_id = f"t-{uuid.uuid4().hex[:10]}"
        created = api.post("/v1/tenants", json={"id": tenant_id, "name": tenant_id.upper()})
        assert created.status_code == 201, created.text
        issued = api.post(f"/v1/tenants/{tenant_id}/keys", json={"label": "tests"})
        assert issued.status_code == 201, issued.text
        client = httpx.Client(
            base_url=api_url,
            timeout=60,
            headers={"Authorization": f"Bearer {issued.json()['key']}"},
        )
        client.tenant_id = tenant_id  # type: ignore[attr-defined]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


Simulator = SimulatorControl

CHROMIUM = "/usr/bin/chromium"
# As the machine's own probe starts it: no sandbox (root), and nothing that phones home, which
# this closed network would refuse many times a second.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Per module, not per session: Playwright's sync API keeps an asyncio loop running in this
# thread while it is open, and every later test that calls asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright (which never downloads a browser here);
    ``ops/install-chromium`` installs the Debian package on first use."""
    from playwright.sync_api import sync_playwright

    installer = Path(__file__).resolve().parent.parent / "ops" / "install-chromium"
    installed = subprocess.run([str(installer)], capture_output=True, text=True, check=False)
    if installed.returncode != 0:
        pytest.fail(f"could not install Chromium for the browser tests: {installed.stderr}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def simulator(stack: Stack) -> Iterator[Simulator]:
    """The simulator, back on its default config and zeroed stats after the test."""
    assert stack.simulator_url is not None
    sim = SimulatorControl(stack.simulator_url)
    sim.configure(default_config())
    sim.reset()
    yield sim
    sim.configure(default_config())
    sim.close()


def wait_until(
    predicate: Callable[[], bool], *, timeout: float = 30.0, every: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


def job_statuses(engine: Engine, job_ids: list[str]) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, status FROM jobs WHERE id = ANY(:ids)"), {"ids": job_ids}
        ).all()
    return {r.id: r.status for r in rows}


def wait_for_jobs(engine: Engine, job_ids: list[str], *, timeout: float = 60.0) -> dict[str, str]:
    statuses: dict[str, str] = {}

    def done() -> bool:
        nonlocal statuses
        statuses = job_statuses(engine, job_ids)
        return len(statuses) == len(job_ids) and all(s in TERMINAL for s in statuses.values())

    wait_until(done, timeout=timeout, every=0.1)
    return statuses


def count_rows(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        query = text(f"SELECT count(*) FROM {table}")
        return int(conn.execute(query).scalar_one())
