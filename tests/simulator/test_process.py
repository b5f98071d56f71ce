"""The simulator as its users start it: ``run()`` in its own process, from a config file."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.simulator import load_config

TOML_CONFIG = """
seed = 3

[providers.file-openai]
format = "openai"
rpm = 120
keys = ["sk-file"]

[providers.file-openai.models.file-model]
latency_ms = 20
output_tokens = [4, 4]
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "simulator.toml"
    path.write_text(TOML_CONFIG)
    return path


def test_load_config_reads_toml_and_json(config_file: Path, tmp_path: Path) -> None:
    config = load_config(config_file)
    provider = config.providers["file-openai"]
    assert (config.seed, provider.rpm, provider.keys) == (3, 120, ["sk-file"])
    assert provider.models["file-model"].output_tokens == (4, 4)
    as_json = tmp_path / "simulator.json"
    as_json.write_text(config.model_dump_json())
    assert load_config(as_json) == config


@pytest.fixture
def served(config_file: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "app.simulator", "--port", str(port)]
    process = subprocess.Popen([*command, "--config", str(config_file)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"{url}/_health").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the simulator process did not start"
                assert process.poll() is None, "the simulator process exited"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_separate_process_serves_the_config_file(served: str) -> None:
    request = {"model": "file-model", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": "Bearer sk-file"}
    with httpx.Client(base_url=served, headers=headers) as client:
        started = time.monotonic()
        response = client.post("/file-openai/v1/chat/completions", json=request)
        assert time.monotonic() - started >= 0.02  # latency_ms
        assert response.status_code == 200
        assert response.json()["usage"]["completion_tokens"] == 4
        assert response.headers["x-ratelimit-limit-requests"] == "120"
        with client.stream(
            "POST", "/file-openai/v1/chat/completions", json={**request, "stream": True}
        ) as stream:
            lines = [line for line in stream.iter_lines() if line]
        assert lines[-1] == "data: [DONE]"
        assert len(lines) == 1 + 4 + 1 + 1  # role, four words, finish, [DONE]
        denied = client.post(
            "/file-openai/v1/chat/completions", json=request, headers={"authorization": "Bearer x"}
        )
        assert denied.status_code == 401
        assert client.get("/_stats").json()["providers"]["file-openai"]["requests"] == 3
