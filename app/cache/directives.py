"""What the cache does with one request: whether it takes part, and under which fingerprint.

A request takes part when its ``cache.mode`` says ``exact`` or ``semantic``, or, saying
nothing, when the gateway's default mode is ``exact`` and the request is deterministic: an
embedding, or a chat request with ``temperature: 0`` or a ``seed``. A chat request that leaves
``temperature`` unset runs: every provider behind the gateway samples by default (OpenAI,
Anthropic and Gemini at 1, Ollama at 0.8), so two such calls may rightly answer differently.

The **fingerprint** (``key``) is a SHA-256 of the request normalised: the model chain,
``policy`` (with its ``tags``) or ``strategy`` (with its ``route``) as asked, the messages
(``prompt`` as its one user message, a lone text part as plain text), and every stored
parameter that shapes the answer — ``temperature``, ``top_p``, ``max_tokens``, ``stop``,
``tools``, ``tool_choice``, ``response_format``, ``seed``; ``input`` and ``dimensions`` for
embeddings. Only what cannot change the answer is left out: ``user``, ``stream``,
``awaited`` (a caller waits on the request), the embeddings' ``encoding_format`` and ``cache``
itself; ``metadata``, ``priority``,
``project``, ``custom_id``, deadlines and webhooks are not part of the stored request at all.
Leaving out is a list of names, so a parameter added to requests later counts by default. The
tenant is not hashed: every lookup is by tenant.

The **semantic scope** is the same digest without the last message: a semantic hit needs the
same model, parameters, system prompt and earlier turns, and a similar last user message —
embedded alone, normalised (NFKC, case-folded, whitespace collapsed), since a long shared
system prompt would make every question look alike.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from typing import Any

import orjson

from app.config import Settings
from app.errors import InvalidInput
from app.jobs.schemas import RoutedRequest
from app.relay.publisher import AWAITED_FLAG, STREAM_FLAG

FINGERPRINT_VERSION = 1
DIRECTIVE = "cache"  # the key of the stored request that carries the directive
# Stored request fields that never change the answer.
IGNORED = frozenset({"user", STREAM_FLAG, AWAITED_FLAG, DIRECTIVE, "encoding_format"})
EXACT, SEMANTIC = "exact", "semantic"


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """The gateway's cache settings (``SWITCHBOARD_CACHE_*``)."""

    default_mode: str = EXACT
    ttl_s: int = 24 * 3600
    threshold: float = 0.95
    embedding_model: str | None = None
    embedding_dimensions: int | None = None
    index: str = "auto"
    max_entries: int = 100_000

    @classmethod
    def from_settings(cls, settings: Settings) -> CacheConfig:
        return cls(
            default_mode=settings.cache_default_mode,
            ttl_s=settings.cache_ttl_s,
            threshold=settings.cache_semantic_threshold,
            embedding_model=settings.cache_embedding_model,
            embedding_dimensions=settings.cache_embedding_dimensions,
            index=settings.cache_semantic_index,
            max_entries=settings.cache_max_entries,
        )


@dataclass(frozen=True, slots=True)
class Directive:
    """How one job takes part in the cache; stored with its request as ``cache``."""

    mode: str  # exact | semantic (as asked; semantic may have no text to embed)
    ttl_s: int
    key: str
    requested: str = ""  # the model as asked, for listings: "a,b", "policy:p", "strategy:s"
    scope: str | None = None  # semantic: the partition its prompt is compared within
    text: str | None = None  # semantic: the normalised last user message to embed
    threshold: float | None = None

    @property
    def semantic(self) -> bool:
        """It will look up similar prompts (it has a last user message to embed)."""
        return self.text is not None

    def stored(self) -> dict[str, Any]:
        """What the job's request keeps (the text to embed goes to the lookup job instead)."""
        stored: dict[str, Any] = {
            "mode": self.mode,
            "ttl": self.ttl_s,
            "key": self.key,
            "requested": self.requested,
        }
        if self.scope is not None:
            stored.update(scope=self.scope, threshold=self.threshold)
        return stored

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> Directive:
        return cls(
            mode=stored["mode"],
            ttl_s=int(stored["ttl"]),
            key=stored["key"],
            requested=stored.get("requested", ""),
            scope=stored.get("scope"),
            threshold=stored.get("threshold"),
        )


def directive(
    params: RoutedRequest, request: dict[str, Any], config: CacheConfig
) -> Directive | None:
    """The directive for a request (``request`` is what its job stores); None: it runs
    without the cache."""
    options = params.cache
    asked = options.mode if options is not None else None
    mode = asked or config.default_mode
    if mode == "off":
        return None
    if asked is None and not deterministic(params.kind, request):
        return None
    route = route_of(params)
    key = digest(params.kind, route, request)
    ttl_s = (options.ttl if options is not None else None) or config.ttl_s
    requested = requested_of(params)
    if mode != SEMANTIC:
        return Directive(EXACT, ttl_s, key, requested)
    if config.embedding_model is None:
        raise InvalidInput(
            "the semantic cache is not configured on this gateway "
            "(SWITCHBOARD_CACHE_EMBEDDING_MODEL); use `cache.mode: exact`",
            code="semantic_cache_unavailable",
            param="cache.mode",
        )
    messages = request.get("messages") or []
    text = last_user_text(messages)
    scope = digest(params.kind, route, {**request, "messages": messages[:-1]})
    threshold = (options.threshold if options is not None else None) or config.threshold
    return Directive(SEMANTIC, ttl_s, key, requested, scope, text, threshold)


def deterministic(kind: str, request: dict[str, Any]) -> bool:
    """An answer the same request would give again: an embedding, or a chat request that
    does not sample (``temperature: 0``) or fixes its sampling (``seed``)."""
    if kind != "chat":
        return True
    return request.get("temperature") == 0 or request.get("seed") is not None


def route_of(params: RoutedRequest) -> dict[str, Any]:
    if params.model is not None:
        return {"model": params.model_chain}
    if params.strategy is not None:
        route = params.route.model_dump(mode="json", exclude_none=True) if params.route else {}
        return {"strategy": params.strategy, "route": route}
    return {"policy": params.policy, "tags": sorted(params.tags or [])}


def requested_of(params: RoutedRequest) -> str:
    if params.model is not None:
        return ",".join(params.model_chain)
    if params.strategy is not None:
        return f"strategy:{params.strategy}"
    return f"policy:{params.policy}"


def digest(kind: str, route: dict[str, Any], request: dict[str, Any]) -> str:
    body = {k: v for k, v in request.items() if k not in IGNORED}
    if "messages" in body:
        body["messages"] = [_message(m) for m in body["messages"]]
    document = {"v": FINGERPRINT_VERSION, "kind": kind, "route": route, "request": body}
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _message(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if (
        isinstance(content, list)
        and len(content) == 1
        and isinstance(content[0], dict)
        and content[0].get("type") == "text"
        and isinstance(content[0].get("text"), str)
    ):
        return {**message, "content": content[0]["text"]}
    return message


def last_user_text(messages: list[dict[str, Any]]) -> str | None:
    """The normalised text of the last message, if it is a user's and all text."""
    if not messages or messages[-1].get("role") != "user":
        return None
    content = messages[-1].get("content")
    if isinstance(content, list):
        if not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
            return None  # images and other parts: no text to compare by meaning
        content = " ".join(str(p.get("text", "")) for p in content)
    if not isinstance(content, str):
        return None
    text = normalise(content)
    return text or None


def normalise(text: str) -> str:
    """What the semantic lookup embeds: case, width and spacing do not change a question."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
