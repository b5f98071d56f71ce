"""Reading the OpenAI chat shape that ``ChatCall`` carries, for formats that speak another.

Anthropic, Gemini and Ollama each rebuild messages, tools and tool choices in their own shape;
what they all need to read out of the OpenAI shape first lives here once.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from app.errors import InvalidInput
from app.providers.wire import decode_json


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image given by URL; ``data`` (base64) and ``media_type`` are set for ``data:`` URLs."""

    url: str
    media_type: str | None = None
    data: str | None = None


Part = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One callable tool, out of OpenAI's ``{"type": "function", "function": {...}}``."""

    name: str
    description: str | None
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """OpenAI's ``tool_choice``, normalised: ``named`` forces the tool called ``name``."""

    mode: Literal["auto", "none", "required", "named"]
    name: str | None = None


def content_parts(content: Any) -> list[Part]:
    """A message's content as text and image parts (a plain string is one text part)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)]
    if not isinstance(content, list):
        raise InvalidInput("message content must be a string or a list of parts")
    parts: list[Part] = []
    for item in content:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text":
            parts.append(TextPart(str(item.get("text", ""))))
        elif kind == "image_url":
            image = item.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                raise InvalidInput("image_url part without a url")
            parts.append(image_part(url))
        else:
            raise InvalidInput(f"unsupported message content part: {kind!r}")
    return parts


def content_text(content: Any) -> str:
    """A message's text, its text parts joined (images dropped)."""
    return "".join(part.text for part in content_parts(content) if isinstance(part, TextPart))


def image_part(url: str) -> ImagePart:
    """An image part, with the base64 payload split out of a ``data:`` URL."""
    if not url.startswith("data:"):
        return ImagePart(url)
    header, _, data = url[len("data:") :].partition(",")
    media_type, _, encoding = header.partition(";")
    if encoding != "base64":
        data = base64.b64encode(data.encode()).decode()
    return ImagePart(url, media_type=media_type or "application/octet-stream", data=data)


def tool_arguments(tool_call: dict[str, Any]) -> dict[str, Any]:
    """The arguments object of an assistant ``tool_calls`` entry (JSON text on the wire)."""
    function = tool_call.get("function") or {}
    raw = function.get("arguments")
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        parsed = decode_json(raw)
    except (ValueError, TypeError):
        raise InvalidInput(
            "tool call arguments are not valid JSON", code="invalid_tool_arguments"
        ) from None
    if not isinstance(parsed, dict):
        raise InvalidInput(
            "tool call arguments must be a JSON object", code="invalid_tool_arguments"
        )
    return parsed


def tool_name(tool_call: dict[str, Any]) -> str:
    """The function name of an assistant ``tool_calls`` entry."""
    name = (tool_call.get("function") or {}).get("name")
    if not isinstance(name, str):
        raise InvalidInput("assistant tool call without a function name")
    return name


def tool_names_by_id(messages: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Tool name of every assistant tool call, by call id (``tool`` messages carry only ids)."""
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            if "id" in call and "name" in function:
                names[call["id"]] = function["name"]
    return names


def function_specs(tools: list[dict[str, Any]] | None) -> list[FunctionSpec]:
    """The function tools of a ChatCall; other tool types have no equivalent elsewhere."""
    specs: list[FunctionSpec] = []
    for tool in tools or ():
        if tool.get("type", "function") != "function":
            raise InvalidInput(f"unsupported tool type: {tool.get('type')!r}")
        function = tool.get("function") or {}
        if not isinstance(function.get("name"), str):
            raise InvalidInput("function tool without a name")
        specs.append(
            FunctionSpec(
                name=function["name"],
                description=function.get("description"),
                parameters=function.get("parameters") or {"type": "object", "properties": {}},
            )
        )
    return specs


def tool_choice(choice: Any) -> ToolChoice | None:
    """OpenAI's ``tool_choice`` (a mode string or a named function) normalised; None if unset."""
    if choice is None:
        return None
    if choice in ("auto", "none", "required"):
        return ToolChoice(choice)
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if isinstance(name, str):
            return ToolChoice("named", name)
    raise InvalidInput(f"unsupported tool_choice: {choice!r}")
