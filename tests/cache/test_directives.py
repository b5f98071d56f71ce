"""Which requests take part in the cache, and what makes two requests the same one."""

from __future__ import annotations

from typing import Any

import pytest

from app.cache.directives import CacheConfig, Directive, directive
from app.chat.schemas import ChatCompletionCreate
from app.embeddings.schemas import EmbeddingCreate
from app.errors import InvalidInput
from app.jobs.schemas import RoutedRequest

CONFIG = CacheConfig(embedding_model="sim-embed-small")


def chat(**body: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0,
        **body,
    }


def plan(body: dict[str, Any], config: CacheConfig = CONFIG) -> Directive | None:
    params: RoutedRequest = ChatCompletionCreate.model_validate(body).job()
    return directive(params, params.to_request(), config)


def key(body: dict[str, Any]) -> str:
    planned = plan(body)
    assert planned is not None
    return planned.key


def test_deterministic_requests_take_part_by_default_and_sampled_ones_do_not() -> None:
    assert plan(chat()) is not None
    assert plan(chat(temperature=None, seed=3)) is not None
    for sampled in (chat(temperature=None), chat(temperature=0.7)):
        assert plan(sampled) is None
        assert plan({**sampled, "cache": {"mode": "exact"}}) is not None  # opted in
    assert plan(chat(cache={"mode": "off"})) is None
    off = CacheConfig(default_mode="off")
    assert plan(chat(), off) is None
    assert plan(chat(cache={"mode": "exact"}), off) is not None
    embed = EmbeddingCreate.model_validate({"model": "e", "input": "text"}).job()
    assert directive(embed, embed.to_request(), CONFIG) is not None  # embeddings: always


def test_what_cannot_change_the_answer_leaves_the_fingerprint_alone() -> None:
    base = key(chat())
    assert key(chat(user="u-1")) == base
    assert key(chat(metadata={"team": "a"})) == base
    assert key(chat(stream=True)) == base
    assert key(chat(cache={"mode": "exact", "ttl": 60})) == base
    assert key(chat(model=["m"])) == base
    assert (
        key(chat(messages=[{"role": "user", "content": [{"type": "text", "text": "Hi"}]}])) == base
    )
    assert key(chat(max_completion_tokens=5)) == key(chat(max_tokens=5))
    assert key(chat(stop="x")) == key(chat(stop=["x"]))


@pytest.mark.parametrize(
    "change",
    [
        {"messages": [{"role": "user", "content": "Hi!"}]},
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ]
        },
        {"model": "other"},
        {"model": ["m", "fallback"]},
        {"model": "policy:CodeGeneration"},
        {"model": "strategy:cost"},
        {"temperature": 0, "top_p": 0.5},
        {"max_tokens": 10},
        {"stop": ["\n"]},
        {"seed": 1},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {"tool_choice": "none"},
    ],
)
def test_what_changes_the_answer_changes_the_fingerprint(change: dict[str, Any]) -> None:
    assert key(chat(**change)) != key(chat())


def test_a_semantic_request_compares_its_last_user_message_within_the_rest() -> None:
    asked = chat(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "  What IS the\tcapital of France? "},
        ],
        cache={"mode": "semantic", "threshold": 0.9},
    )
    planned = plan(asked)
    assert planned is not None
    assert (planned.mode, planned.text, planned.threshold) == (
        "semantic",
        "what is the capital of france?",
        0.9,
    )
    reworded = {**asked, "messages": [asked["messages"][0], {"role": "user", "content": "Hello"}]}
    other_system = {
        **asked,
        "messages": [{"role": "system", "content": "Be long."}, asked["messages"][1]],
    }
    assert plan(reworded).scope == planned.scope  # type: ignore[union-attr]
    assert plan(other_system).scope != planned.scope  # type: ignore[union-attr]
    stored = Directive.from_stored(planned.stored())
    assert (stored.key, stored.scope, stored.threshold) == (planned.key, planned.scope, 0.9)
    image = [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
    with_image = plan({**asked, "messages": [{"role": "user", "content": image}]})
    assert with_image is not None
    assert with_image.text is None  # nothing to compare by meaning: exact only


def test_semantic_needs_an_embedding_model_and_a_chat_request() -> None:
    with pytest.raises(InvalidInput) as refused:
        plan(chat(cache={"mode": "semantic"}), CacheConfig())
    assert refused.value.code == "semantic_cache_unavailable"
    with pytest.raises(ValueError, match="embeddings are cached exactly"):
        EmbeddingCreate.model_validate({"model": "e", "input": "x", "cache": {"mode": "semantic"}})
    with pytest.raises(ValueError, match="threshold"):
        ChatCompletionCreate.model_validate(chat(cache={"mode": "exact", "threshold": 0.5}))
