"""Token accounting and simulated latency: the numbers a gateway can predict."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from app.simulator.tokens import Finish, generate_reply, prompt_tokens, text_tokens

if TYPE_CHECKING:
    from tests.simulator.conftest import RunningSimulator


def test_prompt_tokens_formula() -> None:
    assert text_tokens("") == 0
    assert text_tokens("abcd") == 1
    assert text_tokens("abcde") == 2
    assert text_tokens("€") == 1  # 3 UTF-8 bytes
    assert prompt_tokens([]) == 3
    assert prompt_tokens(["abcd", ""]) == 3 + (4 + 1) + (4 + 0)


def test_completions_are_deterministic_within_range_and_capped() -> None:
    texts = ["What is a monad?"]
    for low, high in ((8, 64), (0, 0), (5, 5)):
        reply = generate_reply(texts, prompt_tokens=9, output_range=(low, high), max_tokens=999)
        assert low <= reply.completion_tokens <= high
        assert reply == generate_reply(
            texts, prompt_tokens=9, output_range=(low, high), max_tokens=999
        )
    capped = generate_reply(texts, prompt_tokens=9, output_range=(50, 50), max_tokens=7)
    assert (capped.completion_tokens, capped.finish) == (7, Finish.LENGTH)
    assert len(capped.text.split()) == 7
    assert "".join(capped.deltas(3)) == capped.text
    spread = {
        generate_reply(
            [f"prompt {i}"], prompt_tokens=1, output_range=(8, 64), max_tokens=99
        ).completion_tokens
        for i in range(50)
    }
    assert len(spread) > 10


def test_latency_and_generation_speed(sim: RunningSimulator) -> None:
    config = sim.fast_config()
    model = config["providers"]["sim-openai"]["models"]["sim-gpt-mini"]
    model.update(latency_ms=100, tokens_per_s=100, output_tokens=[10, 10])
    sim.configure(config)
    started = time.monotonic()
    assert sim.chat("openai").status_code == 200
    assert time.monotonic() - started >= 0.2  # 100 ms + 10 tokens at 100/s
    started = time.monotonic()
    arrivals = []
    body = sim.chat_body("openai", stream=True)
    with sim.http.stream("POST", sim.chat_path("openai"), json=body) as stream:
        for line in stream.iter_lines():
            if line:
                arrivals.append(time.monotonic() - started)
    assert 0.1 <= arrivals[0] < 0.18  # the first chunk after the latency
    assert arrivals[-1] >= 0.19  # the rest spread over the generation time
    assert len(arrivals) == 1 + 10 + 1 + 1
