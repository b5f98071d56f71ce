"""Faults that strike a stream after its 200 and its first deltas, read by the gateway's own
adapters: an in-stream error event, and a stream that stalls and ends unfinished."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
import pytest

from app.providers import ChatCall, Delta, ProviderError, TimedOut, get_adapter, stream_chat
from tests.simulator.test_errors import PROVIDERS, inject
from tests.simulator.test_tools import BASES

if TYPE_CHECKING:
    from tests.simulator.conftest import RunningSimulator

HELLO = [{"role": "user", "content": "Tell me a long story"}]


def streamed(sim: RunningSimulator, fmt: str) -> tuple[httpx.Response, ProviderError]:
    base, model = BASES[fmt]
    adapter = get_adapter(fmt)
    call = ChatCall(base_url=sim.url + base, model=model, messages=HELLO, stream=True)
    with httpx.Client() as client:
        response = client.send(adapter.build_request(call))
    with pytest.raises(ProviderError) as failed:
        adapter.parse_stream(response.text.splitlines())
    return response, failed.value


@pytest.mark.parametrize("fmt", list(BASES))
def test_a_stream_error_comes_after_some_text_in_the_formats_own_shape(
    sim: RunningSimulator, fmt: str
) -> None:
    inject(sim, fmt, stream_error=1.0)
    response, error = streamed(sim, fmt)
    assert response.status_code == 200
    # Both transient, retried the same way; OpenAI's in-stream error names no status.
    assert error.kind in ("overloaded", "server_error")
    assert error.completion is not None
    assert error.completion.text  # deltas came before the error
    if fmt == "anthropic":
        assert "event: error" in response.text
    whole = sim.chat(fmt)  # a whole answer is not affected
    assert whole.status_code == 200


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_a_stalled_stream_sends_nothing_more_then_ends_unfinished(
    sim: RunningSimulator, fmt: str
) -> None:
    inject(sim, fmt, stream_stall=1.0, hang_s=0.2)
    response, error = streamed(sim, fmt)
    assert response.status_code == 200
    assert error.kind == "server_error"
    assert "stream ended before" in error.message
    assert error.completion is not None
    assert error.completion.text
    assert sim.stats()["providers"][PROVIDERS[fmt]]["injected"] == {"stream_stall": 1}


def test_the_gateway_cuts_a_stalled_stream_at_its_attempts_deadline(sim: RunningSimulator) -> None:
    # Deltas for about half a second, then nothing for 30 s: a read timeout alone would fire
    # only a whole timeout after the last byte; the attempt's deadline cuts it first.
    config = sim.fast_config()
    model = config["providers"]["sim-openai"]["models"]["sim-gpt-mini"]
    model.update(
        output_tokens=[40, 40], tokens_per_s=80, errors={"stream_stall": 1.0, "hang_s": 30}
    )
    sim.configure(config)
    received: list[Delta] = []
    call = ChatCall(base_url=sim.url + "/sim-openai/v1", model="sim-gpt-mini", messages=HELLO)
    with httpx.Client() as client, pytest.raises(TimedOut) as raised:
        stream_chat(
            client,
            get_adapter("openai"),
            call,
            timeout=0.8,
            on_start=lambda: None,
            on_deltas=received.extend,
        )
    assert "did not finish its stream within 0.8s" in raised.value.message
    assert received  # it was streaming until it stalled
    deadline = time.monotonic() + 5
    while sim.stats()["providers"]["sim-openai"]["in_flight"]:  # the connection was closed
        assert time.monotonic() < deadline, "the stalled request was not released"
        time.sleep(0.02)
