"""Flower as ``switchboard up`` starts it, seen through a real browser: behind its login, with
every provider's pool online, their queues, and the tasks they ran."""

from __future__ import annotations

import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from app.cli.run import start_up, up_options
from app.cli.stack import Stack
from app.config import Settings
from app.embedded import free_port
from tests.ops.support import fresh_deployment

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

pytestmark = pytest.mark.e2e

PROVIDERS = ["sim-openai", "sim-anthropic"]
POOLS = {*PROVIDERS, "webhooks"}


@pytest.fixture(scope="module")
def up(stack: Stack) -> Iterator[Stack]:
    """What ``DATABASE_URL=… REDIS_URL=… switchboard up --provider sim-openai --provider
    sim-anthropic`` starts, on a deployment of its own."""
    data_dir = Path(tempfile.mkdtemp(prefix="switchboard-up-"))
    data_dir.chmod(0o755)
    with fresh_deployment(stack) as urls, pytest.MonkeyPatch.context() as env:
        for name in ("FLOWER_BASIC_AUTH", "SWITCHBOARD_FLOWER_USER", "SWITCHBOARD_FLOWER_PASSWORD"):
            env.delenv(name, raising=False)  # the login is made in the data folder
        settings = Settings(
            data_dir=data_dir,
            database_url=urls.database_url,
            redis_url=urls.redis_url,
            simulator_port=free_port(),
        )
        started = Stack(up_options(settings, api_port=0, flower_port=0, concurrency=4))
        try:
            assert start_up(started, settings, providers=PROVIDERS) == PROVIDERS
            yield started
        finally:
            started.stop()
            shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def signed_in(up: Stack, browser: Browser) -> Iterator[BrowserContext]:
    login = up.flower_login
    context = browser.new_context(
        http_credentials={"username": login.user, "password": login.password}
    )
    yield context
    context.close()


def test_flower_refuses_a_browser_without_the_login(up: Stack, browser: Browser) -> None:
    from playwright.sync_api import Error as BrowserError

    assert up.flower_url is not None
    context = browser.new_context()
    try:
        page = context.new_page()
        statuses: list[int] = []
        page.on("response", lambda response: statuses.append(response.status))
        # With nothing to answer Flower's challenge, Chromium gives up on the page.
        with pytest.raises(BrowserError, match="ERR_INVALID_AUTH_CREDENTIALS"):
            page.goto(f"{up.flower_url}/workers")
        assert statuses == [401]
        assert context.request.get(f"{up.flower_url}/api/workers").status == 401
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/", "/workers", "/tasks", "/api/workers", "/broker"])
def test_flower_refuses_a_wrong_password(up: Stack, path: str) -> None:
    assert up.flower_url is not None
    login = up.flower_login
    wrong = httpx.get(f"{up.flower_url}{path}", auth=(login.user, login.password + "x"))
    assert wrong.status_code == 401
    assert httpx.get(f"{up.flower_url}{path}").status_code == 401


def test_flower_health_needs_no_login(up: Stack) -> None:
    """Container health checks probe /healthcheck with no credentials."""
    assert up.flower_url is not None
    assert httpx.get(f"{up.flower_url}/healthcheck").text == "OK"


def test_the_workers_page_lists_every_pool_online(up: Stack, signed_in: BrowserContext) -> None:
    from playwright.sync_api import expect

    page = signed_in.new_page()
    page.goto(f"{up.flower_url}/workers")
    rows = page.locator("#workers-table tbody tr")
    for pool in sorted(POOLS):
        row = rows.filter(has_text=f"{pool}.")
        expect(row).to_have_count(1, timeout=30_000)
        expect(row.locator(".badge")).to_have_text("Online", timeout=30_000)
    expect(page.locator("#workers-online")).to_have_text(str(len(POOLS)), timeout=30_000)
    # Pools are named <provider>.<stack tag><n>@<host>: the provider is what comes first.
    nodes = rows.locator("a.worker-name-link").all_text_contents()
    names = {node.strip().split("@")[0].rsplit(".", 1)[0] for node in nodes}
    assert names == POOLS


def test_a_pool_consumes_its_providers_queues_highest_first(
    up: Stack, signed_in: BrowserContext
) -> None:
    from playwright.sync_api import expect

    page = signed_in.new_page()
    page.goto(f"{up.flower_url}/workers")
    link = page.locator("#workers-table a.worker-name-link", has_text="sim-anthropic.")
    expect(link).to_have_count(1, timeout=30_000)
    link.click()
    page.locator("#worker-tab-queues").click()
    queues = page.locator("#worker-queues tr td:first-child")
    expect(queues).to_have_count(4, timeout=30_000)
    assert set(queues.all_inner_texts()) == {
        "switchboard.maintenance",
        "sim-anthropic.high",
        "sim-anthropic.normal",
        "sim-anthropic.low",
    }


def test_the_tasks_page_shows_a_job_the_pool_ran(up: Stack, signed_in: BrowserContext) -> None:
    """``up`` runs workers with task events, so Flower sees each job's task."""
    from playwright.sync_api import expect

    assert up.api_url is not None
    body = {"model": "sim-gpt-mini", "messages": [{"role": "user", "content": "Hi"}]}
    headers = {"Authorization": f"Bearer {up.admin_key}"}
    answer = httpx.post(f"{up.api_url}/v1/chat/completions", json=body, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    job_id = answer.headers["x-switchboard-job-id"]

    page = signed_in.new_page()
    page.goto(f"{up.flower_url}/tasks")
    row = page.locator("#tasks-table tbody tr", has_text="switchboard.run_job")
    expect(row).to_have_count(1, timeout=30_000)
    expect(row).to_contain_text("SUCCESS")
    expect(row).to_contain_text("sim-openai.")
    row.locator("a[href^='/task/']").click()
    expect(page.locator("body")).to_contain_text(job_id)  # the task's one argument


def test_the_login_stays_in_the_data_folder(up: Stack) -> None:
    """Generated once into a 0600 file; never on a command line (``ps`` shows those) or in a
    log of the stack's processes."""
    login = up.flower_login
    assert login.generated
    path = Path(login.source)
    assert path.parent == up.options.data_dir.resolve()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == login.password
    for child in up.children:
        cmdline = Path(f"/proc/{child.process.pid}/cmdline").read_bytes()
        assert login.password.encode() not in cmdline, child.name
    for log in up.log_dir.glob("*.log"):
        assert login.password not in log.read_text(errors="replace"), log.name
