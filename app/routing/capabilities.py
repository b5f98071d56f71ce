"""What a request needs from a model, and the one check that a model can give it.

A chat body implies capabilities of its own: ``tools`` when it offers tools, ``json_mode``
when it asks for a JSON ``response_format``, ``vision`` when a message has image parts. Every
way a job gets its models — named, a fallback list, a routing policy, a strategy — and every
entry point (``POST /v1/jobs``, the OpenAI-compatible endpoints, batches) goes through
:func:`needs_of` and :func:`shortfall`, so no job is queued on a model that cannot serve it.

Besides the catalog's capabilities, a wire format may refuse an input outright: Ollama's API
takes images only inline (base64), so an image given by ``http(s)`` URL cannot go there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.jobs.schemas import ChatParams, RoutedRequest
from app.registry.service import ModelInfo, Registry
from app.routing.selection import CAPABILITY_ALIASES

# What a model must serve, as a refusal names it.
SERVES = {"chat": "chat completions", "embeddings": "embeddings"}
# Wire formats whose API cannot take an image by URL (only inline, base64).
INLINE_IMAGES_ONLY = frozenset({"ollama"})
_JSON_FORMATS = ("json_object", "json_schema")


@dataclass(frozen=True, slots=True)
class Needs:
    """What a request needs from every model of its chain, and why (for the refusal)."""

    capabilities: frozenset[str]
    why: dict[str, str]  # capability -> what in the request asks for it
    image_urls: bool = False  # an image is given by URL rather than inline

    @property
    def key(self) -> tuple[str, ...]:
        """A hashable summary: requests with the same key qualify the same models."""
        return (*sorted(self.capabilities), "image_urls" if self.image_urls else "")


def needs_of(params: RoutedRequest, extra: frozenset[str] = frozenset()) -> Needs:
    """The capabilities ``params`` needs: what it serves (chat, embeddings), what its body
    implies, and ``extra`` (a strategy's ``route.capabilities``)."""
    why = {params.capability: f"the request asks for {SERVES[params.capability]}"}
    wanted = (CAPABILITY_ALIASES.get(name, name) for name in extra)
    why |= {name: "the route asks for it" for name in wanted if name not in why}
    if not isinstance(params, ChatParams):
        return Needs(frozenset(why), why)
    if params.tools:
        why["tools"] = "the request offers tools"
    if (params.response_format or {}).get("type") in _JSON_FORMATS:
        why["json_mode"] = "the request asks for a JSON response_format"
    urls = image_urls(params.messages or [])
    if urls:
        why["vision"] = "the request has image inputs"
    remote = any(not url.startswith("data:") for url in urls)
    return Needs(frozenset(why), why, image_urls=remote)


def shortfall(needs: Needs, model: ModelInfo, registry: Registry) -> str | None:
    """Why ``model`` cannot serve a request with ``needs``, or ``None`` when it can."""
    missing = sorted(needs.capabilities - model.capabilities)
    if missing:
        reasons = "; ".join(f"`{name}`: {needs.why[name]}" for name in missing)
        plural = "ies" if len(missing) > 1 else "y"
        return f"it lacks the capabilit{plural} {reasons}"
    wire_format = registry.providers[model.provider].wire_format
    if needs.image_urls and wire_format in INLINE_IMAGES_ONLY:
        return (
            f"its provider speaks the {wire_format} API, which takes images only inline: "
            "give them as data: URLs"
        )
    return None


def image_urls(messages: list[Any]) -> list[str]:
    """The URL of every image part of ``messages`` (OpenAI's ``image_url`` parts)."""
    urls: list[str] = []
    for message in messages:
        content = getattr(message, "content", None)
        if content is None and isinstance(message, dict):
            content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in ("image_url", "image"):
                continue
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            urls.append(url if isinstance(url, str) else "")
    return urls
