"""The compose file's own commands, environments and health checks, run here word for word:
only the hosts, ports and paths a container would have are swapped for this machine's."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli.stack import Stack
from app.embedded import free_port
from tests.ops.support import COMPOSE_ENV, ROOT, fresh_deployment

pytestmark = pytest.mark.e2e

IMAGE_DATA_DIR = "/var/lib/switchboard"  # SWITCHBOARD_DATA_DIR in ops/Dockerfile
# The long-running services started here: one pool of a simulated and one of a real provider
# stand for the others, whose commands differ only in the provider's name.
SERVICES = [
    "simulator",
    "api",
    "worker-sim-openai",
    "worker-openai",
    "worker-webhooks",
    "beat",
    "flower",
]


@dataclass
class Container:
    """One compose service as a process group of this machine."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]
    healthcheck: list[str]

    def healthy(self) -> bool:
        test = self.healthcheck
        argv = ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
        done = subprocess.run(argv, env=self.env, capture_output=True, timeout=60, check=False)
        return done.returncode == 0

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class Host:
    """Rewrites what a container sees into what this machine has."""

    def __init__(self, data_dir: Path, database_url: str, redis_url: str) -> None:
        self.data_dir = data_dir
        self.ports = {8100: free_port(), 8000: free_port(), 5555: free_port()}
        self.urls = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}

    def word(self, word: str) -> str:
        if word == "0.0.0.0":
            return "127.0.0.1"  # nothing of a test listens beyond this machine
        if word.isdigit() and int(word) in self.ports:
            return str(self.ports[int(word)])
        word = word.replace(IMAGE_DATA_DIR, str(self.data_dir))
        for port, mine in self.ports.items():
            word = word.replace(f"127.0.0.1:{port}", f"127.0.0.1:{mine}")
        return word.replace("http://simulator:8100", f"http://127.0.0.1:{self.ports[8100]}")

    def env(self, service: dict[str, Any]) -> dict[str, str]:
        """The service's environment and the image's, and nothing of this process's: what the
        compose file does not pass, the process does not get."""
        bin_dir = str(Path(sys.executable).parent)
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOSTNAME": socket.gethostname(),  # as Docker sets it: the node names use it
            "PYTHONUNBUFFERED": "1",
            "SWITCHBOARD_DATA_DIR": str(self.data_dir),
        }
        for name, value in service.get("environment", {}).items():
            env[name] = self.urls.get(name) or self.word(str(value))
        if "SWITCHBOARD_METRICS_PORT" in env:
            # Every container has its own :9101; processes sharing this machine need one each.
            env["SWITCHBOARD_METRICS_PORT"] = str(free_port())
        return env


def start(name: str, service: dict[str, Any], host: Host, logs: Path) -> Container:
    env = host.env(service)
    argv = [host.word(word) for word in service["command"]]
    test = service.get("healthcheck", {}).get("test", [])
    healthcheck = [*test[:1], *(host.word(w.replace("$$", "$")) for w in test[1:])]
    log = logs / f"{name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
        )
    return Container(name, process, log, env, healthcheck)


@dataclass
class Deployment:
    host: Host
    containers: dict[str, Container]

    def url(self, container_port: int) -> str:
        return f"http://127.0.0.1:{self.host.ports[container_port]}"


def wait_healthy(container: Container, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if container.process.poll() is not None:
            break
        if container.healthy():
            return
        time.sleep(0.5)
    tail = container.log.read_text(errors="replace")[-3000:]
    raise AssertionError(f"{container.name} did not become healthy:\n{tail}")


@pytest.fixture(scope="module")
def deployed(stack: Stack, compose: dict[str, Any]) -> Iterator[Deployment]:
    data_dir = Path(tempfile.mkdtemp(prefix="switchboard-compose-"))
    data_dir.chmod(0o755)
    services = compose["services"]
    containers: dict[str, Container] = {}
    with fresh_deployment(stack) as urls:
        host = Host(data_dir, urls.database_url, urls.redis_url)
        try:
            containers["migrate"] = start("migrate", services["migrate"], host, data_dir)
            migrated = containers["migrate"].process.wait(120)
            assert migrated == 0, containers["migrate"].log.read_text()
            for name in SERVICES:
                containers[name] = start(name, services[name], host, data_dir)
            for name in SERVICES:
                wait_healthy(containers[name])
            yield Deployment(host, containers)
        finally:
            for container in containers.values():
                container.stop()
            shutil.rmtree(data_dir, ignore_errors=True)


def test_every_service_becomes_healthy_by_its_own_healthcheck(deployed: Deployment) -> None:
    assert set(deployed.containers) == {"migrate", *SERVICES}
    assert all(deployed.containers[name].process.poll() is None for name in SERVICES)


def test_every_worker_pool_serves_its_metrics_where_compose_says(deployed: Deployment) -> None:
    pools = {n: c for n, c in deployed.containers.items() if "SWITCHBOARD_METRICS_PORT" in c.env}
    assert {n for n in pools if n.startswith("worker-")} == {
        n for n in SERVICES if n.startswith("worker-")
    }
    for name, container in pools.items():
        port = container.env["SWITCHBOARD_METRICS_PORT"]
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert scraped.status_code == 200, name
        assert "switchboard_process_" in scraped.text, name


def test_the_api_answers_through_the_compose_pools(deployed: Deployment) -> None:
    """The compose admin key, the API, the sim-openai pool and the simulator, end to end."""
    headers = {"Authorization": f"Bearer {COMPOSE_ENV['SWITCHBOARD_ADMIN_KEY']}"}
    body = {"model": "sim-gpt-mini", "messages": [{"role": "user", "content": "Hi"}]}
    url = f"{deployed.url(8000)}/v1/chat/completions"
    answer = httpx.post(url, json=body, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-switchboard-provider"] == "sim-openai"


def test_migrate_points_the_local_providers_at_the_docker_host(deployed: Deployment) -> None:
    headers = {"Authorization": f"Bearer {COMPOSE_ENV['SWITCHBOARD_ADMIN_KEY']}"}
    listed = httpx.get(f"{deployed.url(8000)}/v1/providers", headers=headers, timeout=30)
    assert listed.status_code == 200, listed.text
    urls = {p["name"]: p["base_url"] for p in listed.json()["data"]}
    assert urls["ollama"] == "http://host.docker.internal:11434"
    assert urls["lmstudio"] == "http://host.docker.internal:1234/v1"
    assert urls["openai"] == "https://api.openai.com/v1"  # the others as the catalog has them


def test_flower_takes_the_login_compose_gives_it(deployed: Deployment) -> None:
    url = f"{deployed.url(5555)}/api/workers"
    password = COMPOSE_ENV["SWITCHBOARD_FLOWER_PASSWORD"]
    assert httpx.get(url).status_code == 401
    workers = httpx.get(url, auth=("admin", password), params={"refresh": "1"}, timeout=30)
    assert workers.status_code == 200
    node = socket.gethostname()
    pools = {"sim-openai", "openai", "webhooks"}
    assert {f"{pool}@{node}" for pool in pools} <= set(workers.json())


def test_a_worker_healthcheck_fails_once_its_pool_is_gone(deployed: Deployment) -> None:
    """A pool's check asks that pool, through the broker, not just any worker."""
    pool = deployed.containers["worker-openai"]
    pool.stop()
    assert not pool.healthy()
    assert deployed.containers["worker-sim-openai"].healthy()
