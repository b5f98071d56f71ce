"""The OpenAI-compatible servers the gateway has adapters for, each with its own quirks.

All four take OpenAI's requests and answer in its shapes; what differs is what a real one
adds or words its own way (shapes from ``tests/fixtures/wire/``):

- **Groq**: every answer carries ``x_groq`` (its request id); a stream reports its usage in
  ``x_groq.usage`` on the finish chunk, not in a usage chunk of its own; rate-limit errors
  are typed ``tokens``/``requests`` with no ``param``; a full flex tier is a ``498``.
- **OpenRouter**: streams open with ``: OPENROUTER PROCESSING`` comments; ids are ``gen-…``
  and every answer names the upstream ``provider``; usage carries ``cost``; errors are
  ``{"error": {"code": <status>, "message", "metadata"}}``, an upstream's failure inside
  ``metadata.raw``, and a stream that fails after its 200 ends with a chunk holding the
  error and ``finish_reason: "error"``.
- **vLLM**: errors are the flat ``{"object": "error", "message", "type", "param", "code"}``
  with ``type`` an exception name (``BadRequestError``, ``NotFoundError``); a bad key is
  ``{"error": "Unauthorized"}``.
- **LM Studio**: a model it has not loaded is ``400 "No models loaded..."``; a prompt longer
  than the loaded context is its own wording; a crashed runtime is ``{"error": "<text>"}``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from app.simulator.calls import ChatRequest, HttpRequest, Route
from app.simulator.faults import Fault, SimError
from app.simulator.formats.base import ReplyMeta, sse_event
from app.simulator.formats.openai import _FINISH, OpenAIFormat
from app.simulator.tokens import Reply

UPSTREAM = "SimCloud"  # the upstream OpenRouter says served a simulated answer
_PROCESSING = b": OPENROUTER PROCESSING\n\n"
_STATUS = {
    Fault.NO_ROUTE: 404,
    Fault.AUTH: 401,
    Fault.INVALID_JSON: 400,
    Fault.INVALID_REQUEST: 400,
    Fault.NOT_FOUND: 404,
    Fault.CONTEXT_LENGTH: 400,
    Fault.RATE_LIMIT: 429,
    Fault.SERVER_ERROR: 500,
    Fault.UNAVAILABLE: 503,
    Fault.OVERLOADED: 503,
    Fault.TIMEOUT: 504,
}


def _context_message(error: SimError) -> str:
    """OpenAI's context-length wording, which vLLM and Groq repeat."""
    total = error.prompt_tokens + error.output_tokens
    return (
        f"This model's maximum context length is {error.context_window} tokens. However, you "
        f"requested {total} tokens ({error.prompt_tokens} in the messages, "
        f"{error.output_tokens} in the completion). Please reduce the length of the messages "
        "or completion."
    )


class GroqFormat(OpenAIFormat):
    name = "groq"

    def route(self, request: HttpRequest, path: str) -> Route | None:
        return super().route(request, path.removeprefix("/openai"))  # api.groq.com/openai/v1

    def render_chat(self, chat: ChatRequest, reply: Reply, meta: ReplyMeta) -> Any:
        body = dict(super().render_chat(chat, reply, meta))
        body["usage"] = {"queue_time": 0.01, **self.usage(reply), "total_time": meta.duration_s}
        return {**body, "x_groq": {"id": "req_" + meta.uid}, "service_tier": "on_demand"}

    def stream_payloads(
        self, chat: ChatRequest, reply: Reply, meta: ReplyMeta
    ) -> list[dict[str, Any]]:
        # Groq has no usage chunk of its own: the finish chunk's x_groq carries the usage.
        payloads = super().stream_payloads(replace(chat, include_usage=False), reply, meta)
        payloads[0] = {**payloads[0], "x_groq": {"id": "req_" + meta.uid}}
        usage = {"queue_time": 0.01, **self.usage(reply)}
        payloads[-1] = {**payloads[-1], "x_groq": {"id": "req_" + meta.uid, "usage": usage}}
        return payloads

    def response_id(self, meta: ReplyMeta) -> str:
        return f"chatcmpl-{meta.uid[:8]}-{meta.uid[8:12]}-{meta.uid[12:]}"

    def render_error(self, error: SimError) -> tuple[int, Any]:
        status, body = super().render_error(error)
        detail = dict(body["error"])
        detail.pop("param", None)  # Groq's errors carry no param
        if error.fault is Fault.RATE_LIMIT:
            facts = error.rate_limit
            detail["type"] = "requests" if facts is None or facts.kind == "requests" else "tokens"
        elif error.fault is Fault.OVERLOADED:
            status = 498
            detail |= {"message": "Flex tier capacity exceeded. Please try again later."}
        return status, {"error": detail}


class OpenRouterFormat(OpenAIFormat):
    name = "openrouter"

    def route(self, request: HttpRequest, path: str) -> Route | None:
        return super().route(request, path.removeprefix("/api"))  # openrouter.ai/api/v1

    def render_chat(self, chat: ChatRequest, reply: Reply, meta: ReplyMeta) -> Any:
        body = dict(super().render_chat(chat, reply, meta))
        choice = {**body["choices"][0], "native_finish_reason": _FINISH[reply.finish]}
        return {**body, "provider": UPSTREAM, "choices": [choice]}

    def stream_preamble(self) -> list[bytes]:
        return [_PROCESSING, _PROCESSING]

    def stream_payloads(
        self, chat: ChatRequest, reply: Reply, meta: ReplyMeta
    ) -> list[dict[str, Any]]:
        return [
            {**payload, "provider": UPSTREAM}
            for payload in super().stream_payloads(chat, reply, meta)
        ]

    def usage(self, reply: Reply) -> dict[str, Any]:
        return {**super().usage(reply), "cost": 0, "is_byok": False}

    def response_id(self, meta: ReplyMeta) -> str:
        return f"gen-{int(meta.created)}-{meta.uid}"

    def render_stream_error(self) -> bytes:
        # OpenRouter's documented mid-stream error: a chunk with the error at its top level.
        return sse_event(
            {
                "id": "gen-stream-error",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "",
                "provider": UPSTREAM,
                "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"},
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
            }
        )

    def render_error(self, error: SimError) -> tuple[int, Any]:
        status, body = super().render_error(error)
        status = _STATUS[error.fault]
        detail: dict[str, Any] = {"message": body["error"]["message"], "code": status}
        if error.fault is Fault.AUTH:
            detail["message"] = (
                "No auth credentials found" if error.key is None else "User not found."
            )
        elif error.fault is Fault.CONTEXT_LENGTH:
            detail["message"] = _context_message(error).replace("This model's", "This endpoint's")
            detail["metadata"] = {"provider_name": UPSTREAM}
        elif error.fault in (Fault.RATE_LIMIT, Fault.OVERLOADED, Fault.SERVER_ERROR):
            raw = body["error"]["message"]
            status = 429 if error.fault is Fault.RATE_LIMIT else 502
            detail = {
                "message": "Provider returned error",
                "code": status,
                "metadata": {"raw": raw, "provider_name": UPSTREAM},
            }
        return status, {"error": detail}


class VLLMFormat(OpenAIFormat):
    name = "vllm"
    filters_content = False  # vLLM has no content filter

    _TYPES = {400: "BadRequestError", 404: "NotFoundError", 500: "InternalServerError"}

    def render_error(self, error: SimError) -> tuple[int, Any]:
        if error.fault is Fault.AUTH:
            return 401, {"error": "Unauthorized"}
        status, body = super().render_error(error)
        message = body["error"]["message"]
        if error.fault is Fault.NOT_FOUND:
            message = f"The model `{error.model}` does not exist."
        elif error.fault is Fault.CONTEXT_LENGTH:
            message = _context_message(error)
        kind = self._TYPES.get(status, "ServiceUnavailableError" if status == 503 else "Error")
        return status, {
            "object": "error",
            "message": message,
            "type": kind,
            "param": body["error"]["param"],
            "code": status,
        }


class LMStudioFormat(OpenAIFormat):
    name = "lmstudio"
    filters_content = False  # a local runtime has no content filter

    def render_error(self, error: SimError) -> tuple[int, Any]:
        status, body = super().render_error(error)
        fault = error.fault
        if fault is Fault.NOT_FOUND:
            message = (
                "No models loaded. Please load a model in the developer page or use the "
                "'lms load' command."
            )
            return 400, {"error": {"message": message}}
        if fault is Fault.CONTEXT_LENGTH:
            message = (
                f"Trying to keep the first {error.prompt_tokens} tokens when context the "
                "overflows. However, the model is loaded with context length of only "
                f"{error.context_window} tokens, which is not enough. Try to load the model "
                "with a larger context length, or provide a shorter input"
            )
            return 400, {"error": message}
        if fault is Fault.SERVER_ERROR:
            return 500, {"error": "The model has crashed without additional information."}
        return status, body
