"""A real simulator for the simulator's tests: uvicorn on a free port in a background thread.

One server serves the whole session; each test gets it back on a zero-latency copy of the
default config with zeroed counters and fresh buckets (through the admin endpoints, so those
are exercised by every test).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app.simulator import SimulatorApp, SimulatorConfig, create_app, default_config

WIRE_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wire"


def fast_config(**overrides: dict[str, Any]) -> dict[str, Any]:
    """The default providers with zero latency, as JSON; ``overrides`` update providers."""
    config = default_config().model_dump(mode="json")
    for provider in config["providers"].values():
        for model in provider["models"].values():
            model.update(latency_ms=0, jitter_ms=0)
    for name, fields in overrides.items():
        config["providers"].setdefault(name, {}).update(fields)
    return config


def wire_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((WIRE_FIXTURES / f"{name}.json").read_text())
    return data


_HELLO = [{"role": "user", "content": "Hello there"}]
_CHATS: dict[str, tuple[str, dict[str, Any]]] = {
    "openai": ("/sim-openai/v1/chat/completions", {"model": "sim-gpt-mini", "messages": _HELLO}),
    "anthropic": (
        "/sim-anthropic/v1/messages",
        {"model": "sim-claude-haiku", "max_tokens": 256, "messages": _HELLO},
    ),
    "gemini": (
        "/sim-gemini/v1beta/models/sim-gemini-flash:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": "Hello there"}]}]},
    ),
    "ollama": (
        "/sim-ollama/api/chat",
        {"model": "sim-llama-small", "messages": _HELLO, "stream": False},
    ),
}
FORMATS = tuple(_CHATS)


class RunningSimulator:
    """The test server: its URL, its in-process app, a client and request helpers."""

    fast_config = staticmethod(fast_config)
    wire_fixture = staticmethod(wire_fixture)

    def __init__(self, url: str, app: SimulatorApp) -> None:
        self.url = url
        self.app = app
        self.http = httpx.Client(base_url=url, timeout=10)

    def configure(self, config: dict[str, Any] | SimulatorConfig) -> None:
        body = (
            config.model_dump_json() if isinstance(config, SimulatorConfig) else json.dumps(config)
        )
        self.http.put("/_config", content=body).raise_for_status()
        self.http.post("/_reset").raise_for_status()

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = self.http.get("/_stats").json()
        return data

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, json=body, **kwargs)

    @staticmethod
    def chat_path(fmt: str) -> str:
        """The default-config chat endpoint of wire format ``fmt``."""
        return _CHATS[fmt][0]

    @staticmethod
    def chat_body(fmt: str, **fields: Any) -> dict[str, Any]:
        """A small valid chat body in wire format ``fmt``, with ``fields`` set on top."""
        return {**_CHATS[fmt][1], **fields}

    def chat(
        self, fmt: str, *, headers: dict[str, str] | None = None, **fields: Any
    ) -> httpx.Response:
        """Post a small chat request in wire format ``fmt`` to its default provider."""
        return self.post(self.chat_path(fmt), self.chat_body(fmt, **fields), headers=headers)

    @staticmethod
    def sse_data(text: str) -> list[Any]:
        """The JSON payloads of a server-sent event stream (``[DONE]`` kept as a string)."""
        payloads: list[Any] = []
        for line in text.splitlines():
            if line.startswith("data: "):
                data = line[len("data: ") :]
                payloads.append(data if data == "[DONE]" else json.loads(data))
        return payloads

    @staticmethod
    def sse_events(text: str) -> list[str]:
        """The ``event:`` names of a server-sent event stream, in order."""
        return [line[len("event: ") :] for line in text.splitlines() if line.startswith("event: ")]


@pytest.fixture(scope="session")
def running_simulator() -> Iterator[RunningSimulator]:
    app = create_app(default_config())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, http="httptools")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "simulator did not start"
        time.sleep(0.01)
    running = RunningSimulator(f"http://127.0.0.1:{port}", app)
    yield running
    running.http.close()
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def sim(running_simulator: RunningSimulator) -> RunningSimulator:
    """The running simulator on ``fast_config()`` with zeroed counters and fresh buckets."""
    running_simulator.configure(fast_config())
    return running_simulator
