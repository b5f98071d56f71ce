"""Google's Gemini API: ``generateContent``, its SSE stream, and ``batchEmbedContents``.

Roles become ``user``/``model``, system messages become ``systemInstruction``, sampling goes
into ``generationConfig``. Gemini counts thinking tokens outside ``candidatesTokenCount``;
completion tokens here are ``totalTokenCount - promptTokenCount``, what is billed as output.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.errors import InvalidInput
from app.providers.base import StreamFold, WireAdapter
from app.providers.errors import ContentFiltered
from app.providers.messages import (
    ImagePart,
    Part,
    TextPart,
    content_parts,
    content_text,
    function_specs,
    tool_arguments,
    tool_choice,
    tool_name,
    tool_names_by_id,
)
from app.providers.types import (
    ChatCall,
    Completion,
    Delta,
    EmbeddingCall,
    Embeddings,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from app.providers.wire import (
    as_list,
    as_object,
    compact,
    decode_json,
    dumps_text,
    expected_shape,
    join_url,
    json_request,
    text_or_none,
    token_count,
)

# Finish reasons that mean Google's filters withheld the answer.
FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)


class GeminiAdapter(WireAdapter):
    """The Gemini ``generateContent`` wire format (key in ``x-goog-api-key``, never the URL)."""

    filtered_finish_reasons = FILTERED

    def __init__(self) -> None:
        super().__init__("gemini")

    def translate(self, call: ChatCall) -> httpx.Request:
        method = "streamGenerateContent?alt=sse" if call.stream else "generateContent"
        system, contents = _contents(call.messages)
        tools = [
            compact({"name": s.name, "description": s.description, "parameters": s.parameters})
            for s in function_specs(call.tools)
        ]
        body = compact(
            {
                "contents": contents,
                "systemInstruction": None if system is None else {"parts": [{"text": system}]},
                "tools": [{"functionDeclarations": tools}] if tools else None,
                "toolConfig": _tool_config(call.tool_choice),
                "generationConfig": compact(
                    {
                        "maxOutputTokens": call.max_tokens,
                        "temperature": call.temperature,
                        "topP": call.top_p,
                        "stopSequences": call.stop,
                        "seed": call.seed,
                        **_response_format(call.response_format),
                    }
                )
                or None,
            }
        )
        return json_request(
            join_url(call.base_url, f"{_model_path(call.model)}:{method}"),
            body,
            headers=_auth(call.api_key),
            extra_headers=call.extra_headers,
        )

    def completion_from_body(self, body: Any) -> Completion:
        stream = _StreamState()
        stream.add(as_object(body))
        if stream.finish_reason is None:  # a whole response always says why it stopped
            raise KeyError("finishReason")
        return stream.completion()

    def stream_fold(self) -> StreamFold:
        return _StreamState()

    # -- embeddings ----------------------------------------------------------------------

    def build_embeddings_request(self, call: EmbeddingCall) -> httpx.Request:
        model = _model_path(call.model)
        requests = [
            compact(
                {
                    "model": model,
                    "content": {"parts": [{"text": text}]},
                    "outputDimensionality": call.dimensions,
                }
            )
            for text in call.inputs
        ]
        return json_request(
            join_url(call.base_url, f"{model}:batchEmbedContents"),
            {"requests": requests},
            headers=_auth(call.api_key),
            extra_headers=call.extra_headers,
        )

    def parse_embeddings(self, response: httpx.Response) -> Embeddings:
        body = self.success_body(response)
        with expected_shape(response):
            if "embedding" in body:  # a single embedContent answer
                items = [as_object(body["embedding"])]
            else:
                items = [as_object(item) for item in as_list(body["embeddings"])]
            vectors = [[float(v) for v in as_list(item["values"])] for item in items]
            # batchEmbedContents reports no token usage.
            return Embeddings(vectors=vectors, usage=Usage(0, 0))


@dataclass
class _StreamState:
    """Gemini responses folded so far; a whole response is a stream of one chunk."""

    texts: list[str] | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = field(default_factory=lambda: Usage(0, 0))
    model: str | None = None
    response_id: str | None = None

    @property
    def complete(self) -> bool:
        return self.finish_reason is not None

    def add(self, chunk: dict[str, Any]) -> list[Delta]:
        self.model = text_or_none(chunk.get("modelVersion")) or self.model
        self.response_id = text_or_none(chunk.get("responseId")) or self.response_id
        if "usageMetadata" in chunk:  # cumulative: every chunk repeats the running totals
            self.usage = _usage(as_object(chunk["usageMetadata"]))
        candidates = as_list(chunk.get("candidates"))
        if not candidates:
            self._check_prompt_blocked(chunk)
            if "usageMetadata" in chunk:
                return []  # a usage-only chunk at the end of a stream
            raise KeyError("candidates")
        candidate = as_object(candidates[0])
        content = as_object(candidate.get("content") or {})
        deltas: list[Delta] = []
        for part in as_list(content.get("parts")):
            delta = self._add_part(as_object(part))
            if delta is not None:
                deltas.append(delta)
        self.finish_reason = text_or_none(candidate.get("finishReason")) or self.finish_reason
        return deltas

    def _add_part(self, part: dict[str, Any]) -> Delta | None:
        """Take one part; Gemini sends a function call whole, in one part."""
        if "functionCall" in part:
            call = as_object(part["functionCall"])
            index = len(self.tool_calls)
            call_id = text_or_none(call.get("id")) or f"call_{index}"
            arguments = dumps_text(as_object(call.get("args") or {}))
            self.tool_calls.append(ToolCall(call_id, str(call["name"]), arguments))
            return ToolCallDelta(index, call_id, str(call["name"]), arguments)
        if "text" in part and not part.get("thought"):  # thought parts are reasoning
            text = str(part["text"])
            self.texts = [*(self.texts or []), text]
            return TextDelta(text) if text else None
        return None

    def _check_prompt_blocked(self, chunk: dict[str, Any]) -> None:
        reason = as_object(chunk.get("promptFeedback") or {}).get("blockReason")
        if reason:
            raise ContentFiltered(
                f"gemini: the prompt was blocked (blockReason {reason})",
                provider_code=str(reason),
                completion=replace(self.completion(), finish_reason=str(reason)),
            )

    def completion(self) -> Completion:
        return Completion(
            text=None if self.texts is None else "".join(self.texts),
            finish_reason=self.finish_reason,
            usage=self.usage,
            tool_calls=list(self.tool_calls),
            model=self.model,
            response_id=self.response_id,
        )


def _usage(meta: dict[str, Any]) -> Usage:
    prompt = token_count(meta.get("promptTokenCount"))
    thoughts = token_count(meta.get("thoughtsTokenCount"))
    total = meta.get("totalTokenCount")
    if total is None:
        completion = token_count(meta.get("candidatesTokenCount")) + thoughts
    else:
        completion = max(token_count(total) - prompt, 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=token_count(meta.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def _auth(api_key: str | None) -> dict[str, str]:
    return {} if api_key is None else {"x-goog-api-key": api_key}


def _model_path(model: str) -> str:
    """``models/<name>`` whether or not the registry already wrote the prefix."""
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


def _contents(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """The system instruction and the user/model turns."""
    names = tool_names_by_id(messages)
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(content_text(content))
        elif role == "user":
            _append(turns, "user", [_part(p) for p in content_parts(content)])
        elif role == "assistant":
            parts = [_part(p) for p in content_parts(content)]
            parts += [
                {"functionCall": {"name": tool_name(call), "args": tool_arguments(call)}}
                for call in message.get("tool_calls") or ()
            ]
            _append(turns, "model", parts)
        elif role == "tool":
            name = names.get(str(message.get("tool_call_id")), str(message.get("name", "")))
            response = {"name": name, "response": _tool_result(content_text(content))}
            _append(turns, "user", [{"functionResponse": response}])
        else:
            raise InvalidInput(f"unsupported message role: {role!r}")
    return ("\n\n".join(system) if system else None), turns


def _append(turns: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    # Gemini rejects empty text parts; consecutive same-role turns are merged into one.
    parts = [p for p in parts if p.get("text") != ""]
    if turns and turns[-1]["role"] == role:
        turns[-1]["parts"].extend(parts)
    else:
        turns.append({"role": role, "parts": parts})


def _part(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"text": part.text}
    assert isinstance(part, ImagePart)
    if part.data is not None:
        return {"inlineData": {"mimeType": part.media_type, "data": part.data}}
    # Gemini wants the type of a file it fetches; a URL's extension is the one hint we have.
    media_type, _ = mimetypes.guess_type(urlsplit(part.url).path)
    return {"fileData": compact({"mimeType": media_type, "fileUri": part.url})}


def _tool_result(text: str) -> dict[str, Any]:
    """A tool's output as the object ``functionResponse.response`` must be."""
    try:
        value = decode_json(text)
    except ValueError:
        return {"result": text}
    return value if isinstance(value, dict) else {"result": value}


def _tool_config(choice: Any) -> dict[str, Any] | None:
    normalised = tool_choice(choice)
    if normalised is None:
        return None
    if normalised.mode == "named":
        config = {"mode": "ANY", "allowedFunctionNames": [normalised.name]}
    else:
        config = {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[normalised.mode]}
    return {"functionCallingConfig": config}


def _response_format(response_format: dict[str, Any] | None) -> dict[str, Any]:
    kind = (response_format or {}).get("type")
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = as_object(response_format or {}).get("json_schema") or {}
        return {"responseMimeType": "application/json", "responseJsonSchema": schema.get("schema")}
    return {}
