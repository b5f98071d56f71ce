"""Gemini's wire format: ``/v1beta/models/{model}:{method}`` and ``/v1beta/models``.

Methods: ``generateContent``, ``streamGenerateContent`` (SSE with ``?alt=sse``, else a JSON
array), ``embedContent`` and ``batchEmbedContents``. The key comes from ``x-goog-api-key`` or
``?key=``. Errors are ``{"error": {"code", "message", "status"}}`` as in
``tests/fixtures/wire/gemini_*.json`` — including a bad key answered with 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from app.simulator.calls import ChatRequest, EmbedRequest, HttpRequest, Operation, Route
from app.simulator.config import SimModel
from app.simulator.faults import Fault, SimError
from app.simulator.formats.base import (
    JSON_MEDIA_TYPE,
    ReplyMeta,
    WireFormat,
    content_text,
    invalid,
    is_base64,
    positive_int,
    sse_event,
)
from app.simulator.tokens import Finish, Reply
from app.simulator.tools import ToolSpec, choose_tool, spec_of

_VERSIONS = ("/v1beta/", "/v1/")
MAX_BATCH_EMBED = 100  # Gemini's own cap on batchEmbedContents
_METHODS = {
    "generateContent": Route(Operation.CHAT),
    "streamGenerateContent": Route(Operation.CHAT, stream=True),
    "embedContent": Route(Operation.EMBED),
    "batchEmbedContents": Route(Operation.EMBED, batch=True),
}
_FINISH = {
    Finish.STOP: "STOP",
    Finish.LENGTH: "MAX_TOKENS",
    Finish.CONTENT_FILTER: "SAFETY",
    Finish.TOOL_CALLS: "STOP",  # Gemini says why it stopped, not that it called a function
}
_HARM_CATEGORIES = ("HATE_SPEECH", "DANGEROUS_CONTENT", "HARASSMENT", "SEXUALLY_EXPLICIT")
_RPC = "type.googleapis.com/google.rpc."
# fault -> (status code, status name, fixed message or None when built from the error)
_ERRORS: dict[Fault, tuple[int, str, str | None]] = {
    Fault.NO_ROUTE: (404, "NOT_FOUND", None),
    Fault.AUTH: (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
    Fault.INVALID_JSON: (400, "INVALID_ARGUMENT", "Invalid JSON payload received."),
    Fault.INVALID_REQUEST: (400, "INVALID_ARGUMENT", None),
    Fault.NOT_FOUND: (404, "NOT_FOUND", None),
    Fault.CONTEXT_LENGTH: (400, "INVALID_ARGUMENT", None),
    Fault.RATE_LIMIT: (
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    ),
    Fault.SERVER_ERROR: (
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    Fault.UNAVAILABLE: (503, "UNAVAILABLE", "The service is currently unavailable."),
    Fault.OVERLOADED: (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    Fault.TIMEOUT: (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}
_MISSING_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)


def _field(body: dict[str, Any], camel: str, snake: str) -> Any:
    """A field the API accepts in camelCase or snake_case."""
    return body.get(camel, body.get(snake))


def _parts_text(content: Any) -> str | None:
    """The text of a ``Content`` object (``{"role"?, "parts": [{"text"}...]}``)."""
    if not isinstance(content, dict):
        return None
    parts = content.get("parts")
    return content_text(parts) if isinstance(parts, list) else None


class GeminiFormat(WireFormat):
    name = "gemini"
    words_per_delta = 8  # Gemini streams a few words per chunk

    def route(self, request: HttpRequest, path: str) -> Route | None:
        version = next((v for v in _VERSIONS if path.startswith(v)), None)
        if version is None:
            return None
        rest = path[len(version) :]
        if rest == "models":
            return Route(Operation.MODELS) if request.method == "GET" else None
        if request.method != "POST" or not rest.startswith("models/"):
            return None
        model, _, method = rest[len("models/") :].rpartition(":")
        route = _METHODS.get(method)
        if route is None or not model:
            return None
        sse = route.stream and request.query_param("alt") == "sse"
        return Route(route.operation, model=model, stream=route.stream, batch=route.batch, sse=sse)

    def api_key(self, request: HttpRequest) -> str | None:
        return request.header(b"x-goog-api-key") or request.query_param("key") or None

    def parse_chat(self, body: Any, route: Route) -> ChatRequest:
        if not isinstance(body, dict):
            raise invalid("Invalid JSON payload received. Expected an object.")
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise invalid("* GenerateContentRequest.contents: contents is not specified\n")
        texts: list[str] = []
        system = _field(body, "systemInstruction", "system_instruction")
        if system is not None:
            text = _parts_text(system)
            if text is None:
                raise invalid("Invalid value at 'system_instruction': expected a Content object.")
            texts.append(text)
        images = 0
        for index, content in enumerate(contents):
            text = _parts_text(content)
            if text is None:
                raise invalid(f"Invalid value at 'contents[{index}]': expected a Content object.")
            texts.append(text)
            images += _images(content, index)
        config = _field(body, "generationConfig", "generation_config") or {}
        if not isinstance(config, dict):
            raise invalid("Invalid value at 'generation_config': expected an object.")
        try:
            max_tokens = positive_int(_field(config, "maxOutputTokens", "max_output_tokens"))
        except ValueError:
            raise invalid(
                "Invalid value at 'generation_config.max_output_tokens': expected an integer >= 1."
            ) from None
        tool = _tool(body, contents)
        return ChatRequest(
            route.model or "",
            texts,
            max_tokens,
            route.stream,
            sse=route.sse,
            tool=tool,
            images=images,
        )

    def parse_embed(self, body: Any, route: Route) -> EmbedRequest:
        if not isinstance(body, dict):
            raise invalid("Invalid JSON payload received. Expected an object.")
        requests = body.get("requests") if route.batch else [body]
        if not isinstance(requests, list) or not requests:
            raise invalid("* BatchEmbedContentsRequest.requests: requests is not specified\n")
        if len(requests) > MAX_BATCH_EMBED:
            raise invalid(
                "* BatchEmbedContentsRequest.requests: at most "
                f"{MAX_BATCH_EMBED} requests can be in one batch\n"
            )
        inputs: list[str] = []
        for request in requests:
            text = _parts_text(request.get("content")) if isinstance(request, dict) else None
            if not text:
                raise invalid("* EmbedContentRequest.content: content is not specified\n")
            inputs.append(text)
        try:
            dimensions = positive_int(
                _field(requests[0], "outputDimensionality", "output_dimensionality")
            )
        except ValueError:
            raise invalid("Invalid value at 'output_dimensionality'.") from None
        return EmbedRequest(route.model or "", inputs, dimensions)

    @staticmethod
    def _response(
        chat: ChatRequest, reply: Reply, meta: ReplyMeta, text: str, count: int, done: bool
    ) -> Any:
        candidate: dict[str, Any] = {"index": 0}
        if reply.finish is Finish.CONTENT_FILTER:
            candidate["safetyRatings"] = [
                {"category": "HARM_CATEGORY_" + name, "probability": "NEGLIGIBLE"}
                for name in _HARM_CATEGORIES[:-1]
            ] + [
                {
                    "category": "HARM_CATEGORY_SEXUALLY_EXPLICIT",
                    "probability": "HIGH",
                    "blocked": True,
                }
            ]
        elif reply.tool_call is not None:
            call = {"name": reply.tool_call.name, "args": reply.tool_call.arguments_object}
            candidate["content"] = {"parts": [{"functionCall": call}], "role": "model"}
        else:
            candidate["content"] = {"parts": [{"text": text}], "role": "model"}
        if done:
            candidate["finishReason"] = _FINISH[reply.finish]
        usage: dict[str, Any] = {"promptTokenCount": reply.prompt_tokens}
        if count:  # the real API omits zero counts
            usage["candidatesTokenCount"] = count
        usage["totalTokenCount"] = reply.prompt_tokens + count
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": reply.prompt_tokens}]
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": chat.model,
            "responseId": meta.uid,
        }

    def render_chat(self, chat: ChatRequest, reply: Reply, meta: ReplyMeta) -> Any:
        return self._response(chat, reply, meta, reply.text, reply.completion_tokens, True)

    def render_stream(self, chat: ChatRequest, reply: Reply, meta: ReplyMeta) -> list[bytes]:
        deltas = reply.deltas(self.words_per_delta) or [""]
        responses = []
        for index, delta in enumerate(deltas):
            count = min(reply.completion_tokens, (index + 1) * self.words_per_delta)
            done = index == len(deltas) - 1
            responses.append(self._response(chat, reply, meta, delta, count, done))
        if chat.sse:
            return [sse_event(response) for response in responses]
        # Without alt=sse the API streams one JSON array, an element at a time.
        items = [orjson.dumps(response) for response in responses]
        return [b"[" + items[0]] + [b",\r\n" + item for item in items[1:]] + [b"]"]

    def stream_media_type(self, route: Route) -> bytes:
        return super().stream_media_type(route) if route.sse else JSON_MEDIA_TYPE

    def render_embed(
        self, embed: EmbedRequest, vectors: list[list[float]], prompt_tokens: int, route: Route
    ) -> Any:
        if route.batch:
            return {"embeddings": [{"values": vector} for vector in vectors]}
        return {"embedding": {"values": vectors[0]}}

    def render_models(self, models: Mapping[str, SimModel]) -> Any:
        return {
            "models": [
                {
                    "name": "models/" + name,
                    "version": "001",
                    "displayName": name,
                    "inputTokenLimit": model.context_window,
                    "outputTokenLimit": model.max_output_tokens,
                    "supportedGenerationMethods": list(_METHODS),
                }
                for name, model in models.items()
            ]
        }

    def render_error(self, error: SimError) -> tuple[int, Any]:
        code, status, message = _ERRORS[error.fault]
        details: list[dict[str, Any]] | None = None
        fault = error.fault
        if fault is Fault.AUTH and error.key is None:
            code, status, message = 403, "PERMISSION_DENIED", _MISSING_KEY
        elif fault is Fault.AUTH:
            details = [
                {
                    "@type": _RPC + "ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ]
        elif fault is Fault.NO_ROUTE:
            message = f"The requested URL {error.detail} was not found on this server."
        elif fault is Fault.INVALID_REQUEST:
            message = error.detail
        elif fault is Fault.NOT_FOUND:
            message = (
                f"models/{error.model} is not found for API version v1beta, or is not supported "
                "for generateContent. Call ListModels to see the list of available models and "
                "their supported methods."
            )
        elif fault is Fault.CONTEXT_LENGTH:
            needed = error.prompt_tokens + error.output_tokens
            message = (
                f"The input token count ({needed}) exceeds the maximum number of tokens allowed "
                f"({error.context_window})."
            )
        elif fault is Fault.RATE_LIMIT:
            details = self._quota_details(error)
        body: dict[str, Any] = {"code": code, "message": message, "status": status}
        if details is not None:
            body["details"] = details
        return code, {"error": body}

    @staticmethod
    def _quota_details(error: SimError) -> list[dict[str, Any]]:
        facts = error.rate_limit
        retry_after_s = 1.0 if facts is None else facts.retry_after_s
        delay = f"{retry_after_s:.3f}".rstrip("0").rstrip(".") + "s"
        details: list[dict[str, Any]] = []
        if facts is not None:
            metric = "request_count" if facts.kind == "requests" else facts.kind + "_count"
            violation = {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_" + metric,
                "quotaId": f"GenerateContent{facts.kind.title().replace('_', '')}PerModelPerMinute",
                "quotaDimensions": {"location": "global", "model": error.model},
                "quotaValue": str(facts.limit),
            }
            details.append({"@type": _RPC + "QuotaFailure", "violations": [violation]})
        details.append({"@type": _RPC + "RetryInfo", "retryDelay": delay})
        return details


def _images(content: Any, index: int) -> int:
    """How many image parts a ``Content`` has: ``inlineData`` (a mime type, base64 data) or
    ``fileData`` (a URI); a malformed one is a 400 INVALID_ARGUMENT, as the API answers."""
    parts = content.get("parts") if isinstance(content, dict) else None
    count = 0
    for position, part in enumerate(parts if isinstance(parts, list) else []):
        if not isinstance(part, dict):
            continue
        where = f"contents[{index}].parts[{position}]"
        inline = _field(part, "inlineData", "inline_data")
        file = _field(part, "fileData", "file_data")
        if inline is not None:
            mime = _field(inline, "mimeType", "mime_type") if isinstance(inline, dict) else None
            if not isinstance(mime, str) or not mime.startswith("image/"):
                raise invalid(f"Invalid value at '{where}.inline_data.mime_type'.")
            if not is_base64(inline.get("data")):
                raise invalid(f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES).")
            count += 1
        elif file is not None:
            uri = _field(file, "fileUri", "file_uri") if isinstance(file, dict) else None
            if not isinstance(uri, str) or not uri:
                raise invalid(f"Invalid value at '{where}.file_data.file_uri'.")
            count += 1
    return count


def _tool(body: dict[str, Any], contents: list[Any]) -> ToolSpec | None:
    """The function the simulated model calls: ``tools[].functionDeclarations`` and
    ``toolConfig.functionCallingConfig`` (mode ``NONE``, or ``ANY`` with one allowed name)."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return None
    config = _field(body, "toolConfig", "tool_config")
    config = config if isinstance(config, dict) else {}
    calling = _field(config, "functionCallingConfig", "function_calling_config")
    calling = calling if isinstance(calling, dict) else {}
    if calling.get("mode") == "NONE":
        return None
    allowed = _field(calling, "allowedFunctionNames", "allowed_function_names")
    forced = allowed[0] if isinstance(allowed, list) and len(allowed) == 1 else None
    offered: list[ToolSpec | None] = []
    for tool in tools:
        declarations = (
            _field(tool, "functionDeclarations", "function_declarations")
            if isinstance(tool, dict)
            else None
        )
        if isinstance(declarations, list):
            offered += [
                spec_of(d.get("name"), d.get("parameters"))
                for d in declarations
                if isinstance(d, dict)
            ]
    parts = contents[-1].get("parts") if isinstance(contents[-1], dict) else None
    answered = isinstance(parts, list) and any(
        isinstance(part, dict) and "functionResponse" in part for part in parts
    )
    return choose_tool(offered, forced=forced, answered=answered)
