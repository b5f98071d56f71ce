"""The token estimate is never below what the simulator counts, whatever the text.

The strongest form goes through the real adapters: the gateway's messages are built into
each wire format's request, the simulator's own parser reads that request back, and the
simulator's own counter counts it.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.providers import ChatCall, get_adapter
from app.ratelimit import estimate_input_tokens, estimate_prompt_tokens, max_output
from app.simulator.calls import Operation, Route
from app.simulator.formats import FORMATS
from app.simulator.formats.base import content_text
from app.simulator.tokens import prompt_tokens, text_tokens

# Every kind of text a tokenizer meets: ASCII, accents, CJK, emoji, control characters.
ANY_TEXT = st.text(min_size=1, max_size=300)
SAMPLES = ("", "a", "hello world", "héllo wörld", "日本語のテキスト", "👩‍👩‍👧‍👦🎉", "x" * 10_000)
TEXTS = st.one_of(ANY_TEXT, st.sampled_from(SAMPLES[1:]))


def content() -> st.SearchStrategy[Any]:
    parts = st.lists(st.builds(lambda text: {"type": "text", "text": text}, TEXTS), min_size=1)
    return st.one_of(TEXTS, parts.map(list))


def message(*roles: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"role": st.sampled_from(roles), "content": content()})


MESSAGES = st.lists(message("system", "user", "assistant"), min_size=1, max_size=6)
# What providers accept: any history, then the user's turn.
CHATS = st.tuples(st.lists(message("system", "user", "assistant"), max_size=5), message("user"))


@given(MESSAGES)
def test_never_below_the_simulators_count_of_the_same_messages(
    messages: list[dict[str, Any]],
) -> None:
    texts = [content_text(message["content"]) or "" for message in messages]
    assert estimate_prompt_tokens(messages) >= prompt_tokens(texts)


@pytest.mark.parametrize("wire_format", ["openai", "anthropic", "gemini", "ollama"])
@settings(max_examples=60, deadline=None)
@given(chat=CHATS)
def test_never_below_what_the_simulator_counts_on_the_wire(
    wire_format: str, chat: tuple[list[dict[str, Any]], dict[str, Any]]
) -> None:
    history, turn = chat
    messages = [*history, turn]
    call = ChatCall(base_url="http://sim/v1", model="m", messages=messages, max_tokens=16)
    body = orjson.loads(get_adapter(wire_format).build_request(call).content)
    parsed = FORMATS[wire_format].parse_chat(body, Route(Operation.CHAT, model="m"))
    assert estimate_prompt_tokens(messages) >= prompt_tokens(parsed.texts)


@pytest.mark.parametrize("text", SAMPLES)
def test_the_formula_on_known_texts(text: str) -> None:
    size = len(text.encode())
    expected = 3 + 4 + -(-size // 3)
    assert estimate_prompt_tokens([{"role": "user", "content": text}]) == expected
    assert expected >= prompt_tokens([text])


def test_images_tools_names_and_tool_calls_count() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with_image = [{"role": "user", "content": [{"type": "text", "text": "abc"}, image]}]
    assert estimate_prompt_tokens(with_image) == 3 + 4 + 1 + 1000
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    tool_bytes = len(orjson.dumps(tools))
    plain = [{"role": "user", "content": "abc"}]
    assert estimate_prompt_tokens(plain, tools) == 3 + 4 + 1 + -(-tool_bytes // 3)
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    assistant = [{"role": "assistant", "content": None, "tool_calls": calls, "name": "bot"}]
    size = len(orjson.dumps(calls)) + len(b"bot")
    assert estimate_prompt_tokens(assistant) == 3 + 4 + -(-size // 3)


@given(st.lists(ANY_TEXT, max_size=8))
def test_embedding_inputs_never_below_the_simulators_count(inputs: list[str]) -> None:
    assert estimate_input_tokens(inputs) >= sum(text_tokens(text) for text in inputs)


def test_max_output_is_what_the_request_reserves() -> None:
    assert max_output(None, 4096) == 4096
    assert max_output(100, 4096) == 100
    assert max_output(8000, 4096) == 8000  # the simulator reserves what was asked
