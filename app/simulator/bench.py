"""Measure how many small chat requests per second one simulator process answers.

    python -m app.simulator.bench [--seconds 5] [--concurrency 50] [--url URL]

Without ``--url`` it starts ``python -m app.simulator`` on a free port with a zero-latency,
unlimited OpenAI-format provider, pinned to CPU 0 (the client runs on the other CPUs when
there are any), and stops it afterwards. The load comes from ``--concurrency`` keep-alive
HTTP/1.1 connections driven by a minimal asyncio client: httpx's own pool tops out below
the simulator's rate on one core, so it would measure the client instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import orjson

_CONFIG = {"providers": {"bench": {"format": "openai", "models": {"bench-model": {}}}}}
_BODY = orjson.dumps(
    {
        "model": "bench-model",
        "messages": [{"role": "user", "content": "Say hello in five words."}],
        "max_tokens": 32,
    }
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _simulator_process() -> Iterator[str]:
    """A simulator subprocess on CPU 0 serving the bench provider; yields its chat URL."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "bench.json"
        config.write_bytes(orjson.dumps(_CONFIG))
        command = [sys.executable, "-m", "app.simulator", "--port", str(port)]
        process = subprocess.Popen([*command, "--config", str(config)])
        try:
            if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
                os.sched_setaffinity(process.pid, {0})
                os.sched_setaffinity(0, set(range(1, os.cpu_count() or 2)))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}/bench/v1/chat/completions"
        finally:
            process.terminate()
            process.wait(timeout=10)


async def _connection(url: str, deadline: float, counts: dict[str, int]) -> None:
    """One keep-alive connection posting the chat body until ``deadline``."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    request = (
        f"POST {parts.path} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(_BODY)}\r\n\r\n"
    ).encode() + _BODY
    try:
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            ok = head.startswith(b"HTTP/1.1 200") and b'"chat.completion"' in body
            counts["ok" if ok else "failed"] += 1
    finally:
        writer.close()


async def measure(url: str, seconds: float, concurrency: int) -> tuple[float, dict[str, int]]:
    """Requests per second answered with a chat completion over ``seconds``."""
    counts = {"ok": 0, "failed": 0}
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_connection(url, deadline, counts) for _ in range(concurrency)))
    return counts["ok"] / (time.perf_counter() - started), counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.simulator.bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--url", help="a running simulator's chat completions URL")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(_simulator_process())
        rate, counts = asyncio.run(measure(url, args.seconds, args.concurrency))
    print(f"{rate:,.0f} chat requests/s over {args.seconds:g} s ({counts})")


if __name__ == "__main__":
    main()
